import { loadModelVersion, ModelLoadError, UserTower, type ModelSessionOptions } from '@recsys/serving';
import type { IndexInfo, VectorStore } from '@recsys/vector-index';
import type { IndexSource } from './index-source.js';

/** An index version and the user tower of the two-tower version whose item vectors it holds: they serve together. */
export interface ServingIndex {
  readonly store: VectorStore;
  readonly tower: UserTower;
  readonly info: IndexInfo;
}

/** An index that cannot serve: no matching user tower, a dimension mismatch, unreadable files. */
export class IndexLoadError extends Error {
  override readonly name = 'IndexLoadError';
}

export type TowerOptions = Omit<ModelSessionOptions, 'label'>;

/**
 * Opens an index version and loads the user tower of the two-tower version recorded in it; refuses the pair
 * unless the tower's output has the index's dimension (queries and item vectors must share one space).
 */
export async function loadServingIndex(
  source: IndexSource,
  version: string,
  modelsDir: string,
  towerOptions: TowerOptions,
): Promise<ServingIndex> {
  const store = await source.open(version);
  try {
    const info = store.info();
    let tower: UserTower;
    try {
      tower = await UserTower.load(await loadModelVersion(modelsDir, 'two-tower', info.modelVersion), towerOptions);
    } catch (error) {
      const why = error instanceof ModelLoadError || error instanceof Error ? error.message : String(error);
      throw new IndexLoadError(
        `index ${info.version} holds item vectors of two-tower version ${info.modelVersion}, whose user tower cannot be loaded from ${modelsDir}: ${why}`,
        { cause: error },
      );
    }
    if (tower.dim !== info.dimension) {
      await tower.release();
      throw new IndexLoadError(
        `index ${info.version} has dimension ${info.dimension} but two-tower ${info.modelVersion}'s user tower outputs ${tower.dim}: not the same vector space`,
      );
    }
    return { store, tower, info };
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}

interface Entry {
  index: ServingIndex;
  refs: number;
  retired: boolean;
  closed: boolean;
}

/** A use of the serving index; the pair stays open until every lease taken on it is released. */
export interface IndexLease {
  readonly index: ServingIndex;
  release(): void;
}

/**
 * The serving index, swappable atomically: a request leases the current pair for its whole life, a swap
 * makes new requests take the new pair, and the old one is closed when its last request releases it.
 */
export class ServingIndexHolder {
  private entry: Entry;
  private closed = false;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    index: ServingIndex,
    private readonly onCloseError: (error: unknown, index: ServingIndex) => void = () => undefined,
  ) {
    this.entry = { index, refs: 0, retired: false, closed: false };
  }

  get current(): ServingIndex {
    return this.entry.index;
  }

  acquire(): IndexLease {
    if (this.closed) throw new Error('the serving index is closed');
    const entry = this.entry;
    entry.refs++;
    let released = false;
    return {
      index: entry.index,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        this.closeIfIdle(entry);
      },
    };
  }

  /** Leases the current pair for the duration of `use`. */
  async use<T>(use: (index: ServingIndex) => Promise<T>): Promise<T> {
    const lease = this.acquire();
    try {
      return await use(lease.index);
    } finally {
      lease.release();
    }
  }

  /** New requests take `next` from now on; the old pair closes once idle. Returns the pair replaced. */
  swap(next: ServingIndex): ServingIndex {
    if (this.closed) throw new Error('the serving index is closed');
    const old = this.entry;
    this.entry = { index: next, refs: 0, retired: false, closed: false };
    old.retired = true;
    this.closeIfIdle(old);
    return old.index;
  }

  /** Closes the current pair and waits for retired ones still draining to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.entry.retired = true;
    this.closeIfIdle(this.entry);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  private closeIfIdle(entry: Entry): void {
    if (!entry.retired || entry.refs > 0 || entry.closed) return;
    entry.closed = true;
    const closing = closeServingIndex(entry.index).catch((error: unknown) => this.onCloseError(error, entry.index));
    this.closing.add(closing);
    void closing.finally(() => this.closing.delete(closing));
  }
}

export async function closeServingIndex(index: ServingIndex): Promise<void> {
  await Promise.all([index.store.close(), index.tower.release()]);
}
