import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreClosedError } from './errors.js';
import { buildHnswIndex, openHnswIndex, type HnswStore } from './hnsw-store.js';
import { SwappableStore } from './swappable-store.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type IndexInfo, type ItemPayload, type Neighbour, type SearchOptions, type VectorStore } from './vector-store.js';

const DIM = 8;

/**
 * A real embedded store behind a network-like delay, as a remote store's calls would be: calls overlap, so a swap
 * really happens while some are in flight. Records when it was closed relative to its calls.
 */
class RemoteLikeStore implements VectorStore {
  inFlight = 0;
  callsAfterClose = 0;
  closedWhileInFlight = false;
  closed = false;

  constructor(private readonly inner: HnswStore) {}

  info(): IndexInfo {
    return this.inner.info();
  }

  async search(vector: Float32Array, k: number, options?: SearchOptions): Promise<Neighbour[]> {
    return this.call(() => this.inner.search(vector, k, options));
  }

  async searchBatch(vectors: readonly Float32Array[], k: number, options?: SearchOptions): Promise<Neighbour[][]> {
    return this.call(() => this.inner.searchBatch(vectors, k, options));
  }

  async getVectors(ids: readonly string[]): Promise<(Float32Array | undefined)[]> {
    return this.call(() => this.inner.getVectors(ids));
  }

  async payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]> {
    return this.call(() => this.inner.payloads(ids));
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) this.callsAfterClose++;
    this.inFlight++;
    try {
      await sleep(1 + Math.floor(Math.random() * 4));
      return await run();
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {
    this.closedWhileInFlight ||= this.inFlight > 0;
    this.closed = true;
    await this.inner.close();
  }
}

describe('SwappableStore', () => {
  let root: string;
  const vectors = clusteredUnitVectors({ count: 400, dim: DIM, clusters: 4, seed: 5 });
  const query = vectors.slice(0, DIM);

  const version = async (name: string, prefix: string) => {
    const ids = Array.from({ length: 400 }, (_, i) => `${prefix}-${i}`);
    await buildHnswIndex({ ids, vectors, dim: DIM, metric: 'ip', version: name, modelVersion: `model-${name}` }, join(root, name));
    return new RemoteLikeStore(await openHnswIndex(join(root, name)));
  };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'vector-swap-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('swaps under concurrent searches: none fails, each is answered by one version, the old one closes after its last call', async () => {
    const first = await version('1', 'a');
    const second = await version('2', 'b');
    const store = new SwappableStore(first);
    let stop = false;
    let answered = 0;
    const versionsSeen: string[] = [];
    // Eight clients searching back to back, as a service under load would.
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const results = await store.search(query, 10);
        expect(results).toHaveLength(10);
        const prefixes = new Set(results.map((n) => n.id.split('-')[0]));
        expect(prefixes.size).toBe(1);
        versionsSeen.push([...prefixes][0]!);
        // Each call is answered by one version: it knows the ids of exactly one of them.
        const known = (await store.getVectors(['a-0', 'b-0'])).filter((v) => v !== undefined);
        expect(known).toHaveLength(1);
        expect(known[0]).toHaveLength(DIM);
        answered++;
      }
    });
    await sleep(30);
    const swapped = store.swap(second);
    expect(store.info().version).toBe('2');
    expect(first.inFlight).toBeGreaterThan(0);
    const previous = await swapped;
    expect(previous.version).toBe('1');
    expect(first.closed).toBe(true);
    expect(first.inFlight).toBe(0);
    await sleep(30);
    stop = true;
    await Promise.all(clients);

    expect(first.closedWhileInFlight).toBe(false);
    expect(first.callsAfterClose).toBe(0);
    expect(second.closed).toBe(false);
    expect(answered).toBe(versionsSeen.length);
    const switchAt = versionsSeen.indexOf('b');
    expect(switchAt).toBeGreaterThan(0);
    // Once the new version answered, the old one never did again (allowing for calls started before the swap).
    expect(versionsSeen.slice(switchAt + 16).every((v) => v === 'b')).toBe(true);
    expect(versionsSeen.filter((v) => v === 'b').length).toBeGreaterThan(8);
    await store.close();
    expect(second.closed).toBe(true);
  });

  it('refuses calls once closed, and closing twice is harmless', async () => {
    const store = new SwappableStore(await version('3', 'c'));
    await store.close();
    await store.close();
    await expect(store.search(query, 5)).rejects.toBeInstanceOf(StoreClosedError);
    expect(() => store.info()).toThrow('swappable vector store is closed');
  });
});
