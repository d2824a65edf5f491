import { type ItemBytesReader, readItemColumns } from './item-rows-wire.js';
import type { EncodedItem, FeedAssembler } from './feeds.js';

export interface ItemCacheSettings {
  /** Items kept at most, the least recently used dropped first; 0 turns the cache off. */
  maxItems: number;
  /** How long an item's features are served from memory before they are read again. */
  ttlMs: number;
  /** How long an item the feature service did not know is remembered as unknown; 0 asks again every time. */
  missingTtlMs: number;
}

/** 100k items (about 400 bytes each for the DLRM: 40 MB); features at most a minute old; unknown items asked for again after 5 s. */
export const ITEM_CACHE_DEFAULTS: Readonly<ItemCacheSettings> = { maxItems: 100_000, ttlMs: 60_000, missingTtlMs: 5_000 };

interface Entry<V> {
  value: V;
  found: boolean;
  /** The item's created_at_ms (0 when unknown): stage answers carry it so that re-ranking need not read the item. */
  createdAtMs: number;
  expiresAt: number;
  /** Insertions into the cache when this one was (re)inserted. */
  stamp: number;
}

/**
 * A bounded map from item id to a value that expires: the least recently used out first, expired entries
 * never served. A hit moves an entry to the recent end only once half the cache has been inserted after
 * it, so a hit on a recent entry costs one lookup (an entry used at least every `maxItems / 2` insertions
 * is never dropped).
 */
export class ItemCache<V> {
  // A Map iterates in insertion order: the first key is the least recently used.
  private readonly entries = new Map<string, Entry<V>>();
  private stamp = 0;

  constructor(readonly maxItems: number) {
    if (!(Number.isInteger(maxItems) && maxItems > 0)) throw new RangeError(`maxItems must be a positive integer, got ${maxItems}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The live entry for `id`, now counted as recently used; undefined when absent or expired (which forgets it). */
  get(id: string, now: number): Entry<V> | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(id);
      return undefined;
    }
    if (this.stamp - entry.stamp >= this.maxItems >>> 1) {
      this.entries.delete(id);
      entry.stamp = ++this.stamp;
      this.entries.set(id, entry);
    }
    return entry;
  }

  set(id: string, value: V, found: boolean, ttlMs: number, now: number, createdAtMs = 0): void {
    this.entries.delete(id);
    this.entries.set(id, { value, found, createdAtMs, expiresAt: now + ttlMs, stamp: ++this.stamp });
    if (this.entries.size > this.maxItems) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** What an item read reports for metrics: items served from memory, items read from the feature service, items cached after. */
export interface ItemReadObserver {
  itemsRead(hits: number, misses: number, cached: number): void;
}

export interface EncodedItemReaderOptions extends ItemCacheSettings {
  /** Milliseconds of a monotonic clock (tests move it instead of sleeping). */
  now?: () => number;
  observer?: ItemReadObserver;
}

/**
 * The candidates' item features encoded for one model version, read through an in-process cache: items
 * seen within the TTL are served from memory (their encoded slices, so a batch is assembled by copying),
 * the rest are read in one BatchGetItemFeatures call and encoded. The cache belongs to one model version,
 * so a new version starts with an empty one. The price is staleness: a changed item is seen after at most
 * `ttlMs` (an unknown one, once stored, after at most `missingTtlMs`).
 */
export class EncodedItemReader {
  private readonly cache: ItemCache<EncodedItem> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly assembler: FeedAssembler,
    private readonly options: EncodedItemReaderOptions,
  ) {
    this.cache = options.maxItems > 0 ? new ItemCache(options.maxItems) : undefined;
    this.now = options.now ?? (() => performance.now());
  }

  /** Items cached now. */
  get cached(): number {
    return this.cache?.size ?? 0;
  }

  /**
   * Encoded items in the order asked, each item's created_at_ms (0 when unknown), and the ids the feature service
   * does not know (they are encoded as defaults).
   */
  async read(
    reader: ItemBytesReader,
    itemIds: readonly string[],
  ): Promise<{ items: EncodedItem[]; createdAtMs: Float64Array; missing: string[] }> {
    const n = itemIds.length;
    const items = new Array<EncodedItem>(n);
    const createdAtMs = new Float64Array(n);
    const found = new Uint8Array(n);
    const cache = this.cache;
    let toRead = itemIds as string[];
    let positions: number[] | undefined;
    if (cache) {
      toRead = [];
      positions = [];
      const now = this.now();
      for (let k = 0; k < n; k++) {
        const entry = cache.get(itemIds[k]!, now);
        if (entry === undefined) {
          toRead.push(itemIds[k]!);
          positions.push(k);
        } else {
          items[k] = entry.value;
          createdAtMs[k] = entry.createdAtMs;
          found[k] = entry.found ? 1 : 0;
        }
      }
    }
    if (toRead.length > 0) {
      const { rows } = await readItemColumns(reader, toRead, this.assembler.itemColumns);
      const { ttlMs, missingTtlMs } = this.options;
      const now = this.now();
      for (let j = 0; j < rows.length; j++) {
        const row = rows[j]!;
        const k = positions ? positions[j]! : j;
        const value = this.assembler.encodeItem(row);
        items[k] = value;
        createdAtMs[k] = row.createdAtMs;
        found[k] = row.found ? 1 : 0;
        if (cache && (row.found || missingTtlMs > 0))
          cache.set(row.id, value, row.found, row.found ? ttlMs : missingTtlMs, now, row.createdAtMs);
      }
    }
    this.options.observer?.itemsRead(n - toRead.length, toRead.length, this.cached);
    const missing: string[] = [];
    for (let k = 0; k < n; k++) if (found[k] === 0) missing.push(itemIds[k]!);
    return { items, createdAtMs, missing };
  }
}
