import { StoreClosedError } from './errors.js';
import { type IndexInfo, type ItemPayload, type Neighbour, type SearchOptions, type VectorStore } from './vector-store.js';

/** A store plus the calls still running on it, so that it is closed only once they are done. */
class Lease {
  inFlight = 0;
  private drained: (() => void) | undefined;

  constructor(readonly store: VectorStore) {}

  async run<T>(call: (store: VectorStore) => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await call(this.store);
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  /** Resolves once no call is running; the caller has already stopped handing out this lease. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }
}

/**
 * A VectorStore whose backing store can be replaced while it serves: calls started before `swap` finish on the old
 * store, calls started after it go to the new one, and the old store is closed once its last call has returned.
 */
export class SwappableStore implements VectorStore {
  private lease: Lease | undefined;

  constructor(initial: VectorStore) {
    this.lease = new Lease(initial);
  }

  /** The store serving now. */
  current(): VectorStore {
    return this.active().store;
  }

  info(): IndexInfo {
    return this.active().store.info();
  }

  async search(vector: Float32Array, k: number, options?: SearchOptions): Promise<Neighbour[]> {
    return this.active().run((store) => store.search(vector, k, options));
  }

  async searchBatch(vectors: readonly Float32Array[], k: number, options?: SearchOptions): Promise<Neighbour[][]> {
    return this.active().run((store) => store.searchBatch(vectors, k, options));
  }

  async getVectors(ids: readonly string[]): Promise<(Float32Array | undefined)[]> {
    return this.active().run((store) => store.getVectors(ids));
  }

  async payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]> {
    return this.active().run((store) => store.payloads(ids));
  }

  /**
   * Makes `next` the serving store at once, then waits for the calls still running on the previous store and closes
   * it. Resolves with the previous store's info when it is closed.
   */
  async swap(next: VectorStore): Promise<IndexInfo> {
    const previous = this.active();
    if (previous.store === next) return next.info();
    this.lease = new Lease(next);
    const previousInfo = previous.store.info();
    await previous.idle();
    await previous.store.close();
    return previousInfo;
  }

  /** Stops serving: waits for running calls, then closes the current store. */
  async close(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    this.lease = undefined;
    await lease.idle();
    await lease.store.close();
  }

  private active(): Lease {
    if (this.lease === undefined) throw new StoreClosedError('swappable vector store');
    return this.lease;
  }
}
