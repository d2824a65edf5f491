import type { SearchThreadStats } from './graph-search-threads.js';
/** How closeness is measured; every backend reports scores where higher is closer. */
export type Metric = 'ip' | 'cos' | 'l2';

export const METRICS: readonly Metric[] = ['ip', 'cos', 'l2'];

/** Per-item attributes that searches can filter on. */
export interface ItemPayload {
  category?: string;
  createdAtMs?: number;
}

export interface IndexInfo {
  version: string;
  backend: 'embedded' | 'qdrant';
  size: number;
  dimension: number;
  metric: Metric;
  modelVersion: string;
}

export interface SearchOptions {
  /** Items never returned (already seen, blocked). */
  excludeIds?: ReadonlySet<string>;
  /** When given, only items of these categories are returned. */
  includeCategories?: readonly string[];
  /** Items of these categories are never returned. */
  excludeCategories?: readonly string[];
}

export interface Neighbour {
  id: string;
  /** Higher is closer, for every metric: ip → dot product, cos → cosine, l2 → minus the Euclidean distance. */
  score: number;
  /** The item's stored attributes (both backends return them with every result). */
  payload?: ItemPayload;
}

export interface VectorStore {
  info(): IndexInfo;
  /**
   * The k closest items, best first (ties broken by a fixed item order). Returns k results whenever k items pass the
   * filters, fewer only when fewer qualify.
   */
  search(vector: Float32Array, k: number, options?: SearchOptions): Promise<Neighbour[]>;
  /**
   * One search per vector with the same k and options, answered together (embedded: one multi-threaded graph call;
   * Qdrant: one batch request); result i is search(vectors[i], k, options)'s.
   */
  searchBatch(vectors: readonly Float32Array[], k: number, options?: SearchOptions): Promise<Neighbour[][]>;
  /** Stored attributes of the given ids (undefined for unknown ids), e.g. for candidates another source proposed. */
  payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]>;
  /** Vectors of the given ids (undefined for unknown ids), e.g. for item-to-item from recently viewed items. */
  getVectors(ids: readonly string[]): Promise<(Float32Array | undefined)[]>;
  /**
   * search(the stored vector of item `id`, k, options): the neighbours of an item of this version, as item-to-item asks.
   * The embedded store answers a repeated item from a bounded cache of its graph neighbours. [] for an unknown id.
   * Absent where the store has nothing better than search with the item's vector (Qdrant).
   */
  similar?(id: string, k: number, options?: SearchOptions): Promise<Neighbour[]>;
  /** How `similar` used its cache since the store opened (hits, misses) and how many items it keeps; with `similar`. */
  neighbourCacheStats?(): { hits: number; misses: number; items: number };
  /** What the store's search worker threads did since it opened; undefined without them (and absent on Qdrant). */
  searchWorkerStats?(): SearchThreadStats | undefined;
  /**
   * A score no item of this version can beat for `vector` (ip: |vector| · the largest item norm), for callers that can
   * skip a search whose results could not make their cut. Absent where the store does not know one (Qdrant).
   */
  scoreBound?(vector: Float32Array): number;
  close(): Promise<void>;
}

export interface IndexBuildInput {
  ids: string[];
  /** Row-major, ids.length × dim. */
  vectors: Float32Array;
  dim: number;
  metric: Metric;
  /** One entry per id when given. */
  payload?: ItemPayload[];
  /** A version name: digits, letters, '.', '_' or '-', starting with a letter or digit; see compareVersions. */
  version: string;
  modelVersion: string;
}

/**
 * The graph beam is at least this many candidates per result wanted (usearch searches with ef = max(expansionSearch,
 * results asked for)). 1: at 1M real two-tower items a beam of k already keeps recall@200 at 0.954, 2 made it 0.979 for
 * twice the search time (see the vector-index README's table).
 */
export const DEFAULT_EXPANSION_PER_RESULT = 1;
