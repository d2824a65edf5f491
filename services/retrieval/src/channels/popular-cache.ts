import type { PopularItemsReader, PopularItemsRequest } from './popular.js';

export interface PopularCacheOptions {
  /** A list older than this is refreshed in the background while it keeps serving. */
  refreshMs: number;
  /** Items kept per category filter; a request that needs more (limit plus excluded ids) reads through. */
  items: number;
  /** Category filters kept (least recently used dropped first). */
  maxFilters: number;
  /** A list this old (refreshes failing) is no longer served: the request reads through, and fails if that fails. */
  maxStaleMs: number;
  /** Milliseconds of a monotonic clock (tests move it). */
  now?: () => number;
}

interface PopularItem {
  itemId: string;
  score: number;
}

interface Entry {
  items: readonly PopularItem[];
  loadedAt: number;
  refreshing?: Promise<void>;
}

/**
 * The popular list in memory, one per category filter, so that the popular channel does not ask the feature
 * service on every request: a list older than `refreshMs` keeps serving while one background read replaces it
 * (single flight); a filter never seen, or a list older than `maxStaleMs`, is read before answering. Excluded
 * item ids are dropped here, from a list over-read by `items`. Popularity changes over minutes (a half-life of
 * hours by default), so a list a second old answers as the feature service would.
 */
export class PopularItemsCache implements PopularItemsReader {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(
    private readonly source: PopularItemsReader,
    private readonly options: PopularCacheOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Reads served from memory and reads that went to the feature service (the spec checks them). */
  readonly counts = { hits: 0, reads: 0 };

  async getPopularItems(request: PopularItemsRequest, options?: { signal?: AbortSignal }): Promise<{ items: PopularItem[] }> {
    const excluded = request.filter?.excludeItemIds ?? [];
    if (request.limit + excluded.length > this.options.items) {
      this.counts.reads++;
      return { items: [...(await this.source.getPopularItems(request, options)).items] };
    }
    const include = [...(request.filter?.includeCategories ?? [])].sort();
    const exclude = [...(request.filter?.excludeCategories ?? [])].sort();
    const key = JSON.stringify([include, exclude]);
    const now = this.now();
    let entry = this.entries.get(key);
    if (entry === undefined || now - entry.loadedAt > this.options.maxStaleMs) {
      entry = await this.load(key, include, exclude, options?.signal);
    } else {
      this.counts.hits++;
      // Most recently used last: the first key is the one to drop.
      this.entries.delete(key);
      this.entries.set(key, entry);
      if (now - entry.loadedAt > this.options.refreshMs && entry.refreshing === undefined) {
        const stale = entry;
        stale.refreshing = this.load(key, include, exclude, undefined).then(
          () => undefined,
          () => {
            // Kept serving until maxStaleMs; the next request past refreshMs tries again.
            stale.refreshing = undefined;
          },
        );
      }
    }
    const skip = new Set(excluded);
    const items: PopularItem[] = [];
    for (const item of entry.items) {
      if (items.length >= request.limit) break;
      if (!skip.has(item.itemId)) items.push(item);
    }
    return { items };
  }

  private async load(key: string, include: string[], exclude: string[], signal: AbortSignal | undefined): Promise<Entry> {
    this.counts.reads++;
    const answer = await this.source.getPopularItems(
      { limit: this.options.items, filter: { includeCategories: include, excludeCategories: exclude, excludeItemIds: [] } },
      signal ? { signal } : undefined,
    );
    const entry: Entry = { items: answer.items.map((item) => ({ itemId: item.itemId, score: item.score })), loadedAt: this.now() };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxFilters) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }
}
