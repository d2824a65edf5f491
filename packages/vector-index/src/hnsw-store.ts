import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IdTable, scratchOf, touchRows } from '@recsys/data';
import type { BatchMatches, Index } from 'usearch';
import { validateBuildInput } from './build-input.js';
import { IndexFileError, StoreClosedError, VectorIndexArgumentError } from './errors.js';
import { exactSearch, scoreRow, TopK, type RowMatch } from './exact-search.js';
import {
  assertLittleEndian,
  QUERY_TRANSFORM_FILE,
  bytesOf,
  hnswParamsProblem,
  HNSW_INDEX_FORMAT,
  INDEX_FILES,
  readMeta,
  readVerifiedFile,
  syncAndDigestFile,
  syncDirectory,
  typedView,
  verifyFileOnDisk,
  writeSyncedFile,
  type FileDigest,
  type HnswIndexMeta,
  type HnswParams,
  type VerifyMode,
} from './index-files.js';
import { fitQuerySpace, graphItems, graphQuery } from './query-space.js';
import { newUsearchIndex } from './usearch-index.js';
import { GraphSearchThreads, type SearchThreadStats, type ThreadAnswer } from './graph-search-threads.js';
import { META_FILE } from './versions.js';
import {
  DEFAULT_EXPANSION_PER_RESULT,
  type IndexBuildInput,
  type IndexInfo,
  type ItemPayload,
  type Neighbour,
  type SearchOptions,
  type VectorStore,
} from './vector-store.js';

/**
 * M=16, efConstruction=128, ef=192, an f16 graph: on a real two-tower's 1M items with a query sample, recall@100 0.962
 * (ef 256: 0.965, ef 128: 0.95) for half the search time of ef 256 with 2 per result, f16 finding what f32 finds (see the
 * README: without a query sample, user queries far from the items get about 0.5).
 */
export const DEFAULT_HNSW_PARAMS: HnswParams = { connectivity: 16, expansionAdd: 128, expansionSearch: 192, quantization: 'f16' };

/** Insertion threads of a build: one, so every build of the same input writes the same graph (see BuildHnswOptions.threads). */
export const DEFAULT_BUILD_THREADS = 1;

/** Below this many candidate rows a filtered or small search scans them exactly: as fast as HNSW there, and exact. */
export const DEFAULT_EXACT_SCAN_MAX_ROWS = 4096;

/**
 * Items whose graph neighbours `similar` keeps (12 bytes a neighbour: about 2 KB each at 100 results wanted):
 * item-to-item seeds are the items users view, so a few thousand of the most viewed make most of them (in the 1M-item
 * benchmark's histories the 10,000 most frequent seeds are 68% of all).
 */
export const DEFAULT_NEIGHBOUR_CACHE_ITEMS = 10_000;

/**
 * A cached item's graph search goes this share of the results wanted deeper than the request's own beam, so that later
 * requests excluding more ids (a longer history) still find it deep enough.
 */
const NEIGHBOUR_CACHE_MARGIN = 0.25;

export interface BuildHnswOptions {
  hnsw?: Partial<HnswParams>;
  /**
   * Insertion threads (default 1). usearch's concurrent insertion can leave a node stored but unreachable by any search
   * (unum-cloud/USearch#735, open in 2.26): in one CI run the 100k recall spec, built on 2 threads, had a query find
   * none of its 100 true neighbours where every other run finds 97 or more. One thread builds the same graph from the
   * same input on every run; more build faster at that risk.
   */
  threads?: number;
  /**
   * A sample of the queries the index will serve (rows of dim; e.g. user-tower outputs), for ip and cos indexes: the
   * graph is then built in the query-aware space (query-space.ts), where queries that sit apart from the items — as a
   * two-tower's user vectors do — still find their best items. Results and scores are unchanged: exact either way.
   */
  querySample?: Float32Array;
}

function hnswParams(overrides: Partial<HnswParams> | undefined): HnswParams {
  const params = { ...DEFAULT_HNSW_PARAMS, ...overrides };
  const problem = hnswParamsProblem(params as unknown as Record<string, unknown>);
  if (problem !== undefined) throw new VectorIndexArgumentError(problem.field, problem.reason);
  return params;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Builds an HNSW index over `input` and writes it as the self-contained directory `dir` (which must not exist yet):
 * every file is written and flushed in a sibling staging directory that is renamed to `dir` at the end, so a reader
 * sees the whole version or none of it. Returns the meta written to meta.json.
 */
export async function buildHnswIndex(input: IndexBuildInput, dir: string, options: BuildHnswOptions = {}): Promise<HnswIndexMeta> {
  assertLittleEndian();
  validateBuildInput(input);
  const params = hnswParams(options.hnsw);
  const threads = options.threads ?? DEFAULT_BUILD_THREADS;
  if (!Number.isInteger(threads) || threads <= 0) throw new VectorIndexArgumentError('threads', `${threads} is not a positive integer`);
  if (await exists(dir)) throw new VectorIndexArgumentError('version', `${dir} already exists: versions are immutable, publish a new one`);
  const { ids, vectors, dim, metric, payload } = input;
  if (options.querySample !== undefined && metric === 'l2')
    throw new VectorIndexArgumentError(
      'querySample',
      'the query-aware space serves ip and cos indexes (an l2 ranking is not an inner product)',
    );
  const space = options.querySample === undefined ? undefined : fitQuerySpace(options.querySample, dim);

  const count = ids.length;
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const staging = join(parent, `.staging-${basename(dir)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    const index = newUsearchIndex(dim, metric, params, space !== undefined);
    const keys = new BigUint64Array(count);
    for (let i = 0; i < count; i++) keys[i] = BigInt(i);
    index.add(keys, space === undefined ? vectors : graphItems(space, vectors, metric === 'cos'), threads);
    const files: Record<string, FileDigest> = {};
    if (space !== undefined)
      files[QUERY_TRANSFORM_FILE] = await writeSyncedFile(join(staging, QUERY_TRANSFORM_FILE), bytesOf(space.queryTransform));
    const graphPath = join(staging, INDEX_FILES.graph);
    index.save(graphPath);
    files[INDEX_FILES.graph] = await syncAndDigestFile(graphPath);
    files[INDEX_FILES.vectors] = await writeSyncedFile(join(staging, INDEX_FILES.vectors), bytesOf(vectors));
    files[INDEX_FILES.ids] = await writeSyncedFile(join(staging, INDEX_FILES.ids), Buffer.from(JSON.stringify(ids)));

    const categories: string[] = [];
    const categoryCodes = new Map<string, number>();
    const categoryOfRow = new Int32Array(count).fill(-1);
    const createdAtMs = new Float64Array(count).fill(NaN);
    for (let i = 0; payload !== undefined && i < count; i++) {
      const { category, createdAtMs: created } = payload[i] ?? {};
      if (category !== undefined) {
        let code = categoryCodes.get(category);
        if (code === undefined) {
          code = categories.length;
          categories.push(category);
          categoryCodes.set(category, code);
        }
        categoryOfRow[i] = code;
      }
      if (created !== undefined) createdAtMs[i] = created;
    }
    files[INDEX_FILES.category] = await writeSyncedFile(join(staging, INDEX_FILES.category), bytesOf(categoryOfRow));
    files[INDEX_FILES.createdAtMs] = await writeSyncedFile(join(staging, INDEX_FILES.createdAtMs), bytesOf(createdAtMs));

    const meta: HnswIndexMeta = {
      format: HNSW_INDEX_FORMAT,
      version: input.version,
      modelVersion: input.modelVersion,
      metric,
      dim,
      count,
      createdAt: new Date().toISOString(),
      hnsw: params,
      categories,
      ...(space !== undefined ? { querySpace: { ridge: space.ridge, queries: space.queries } } : {}),
      files,
    };
    // meta.json last: its presence marks a complete version (listVersions relies on it).
    await writeSyncedFile(join(staging, META_FILE), Buffer.from(`${JSON.stringify(meta, null, 2)}\n`));
    await syncDirectory(staging);
    await rename(staging, dir);
    await syncDirectory(parent);
    return meta;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

export interface OpenHnswOptions {
  /** 'checksum' (default) hashes every file against meta.json; 'size' only checks lengths (faster for huge indexes). */
  verify?: VerifyMode;
  /**
   * 'load' (default) reads the graph into memory; 'view' memory-maps it (less resident memory, pages read on demand).
   * Either way the files are verified first; a view must not be used once its directory is rewritten (versions never are).
   */
  mode?: 'load' | 'view';
  /** Overrides the beam width searches use (default: the one the index was built with). */
  expansionSearch?: number;
  /** The beam is at least this many candidates per result wanted (default DEFAULT_EXPANSION_PER_RESULT). */
  expansionPerResult?: number;
  /** Threads of a searchBatch graph call (default: all cores, at most 2). */
  searchThreads?: number;
  /**
   * Below this many candidate rows, searches scan exactly (default DEFAULT_EXACT_SCAN_MAX_ROWS); 0 leaves the choice to
   * the cost rules of searchNow alone (tests use it to reach the graph on small indexes).
   */
  exactScanMaxRows?: number;
  /** Items whose neighbours `similar` keeps, least recently used dropped first (default DEFAULT_NEIGHBOUR_CACHE_ITEMS; 0: none). */
  neighbourCacheItems?: number;
  /**
   * Worker threads that run the graph searches of `search` and `similar` (GraphSearchThreads; default 0: on the
   * caller's thread). Each memory-maps the graph file and scores its candidates exactly from the vectors, which the
   * store then keeps in shared memory; the filters stay on the caller's thread, and answers are the same.
   */
  searchWorkers?: number;
}

/** Opens and verifies an index directory written by buildHnswIndex; errors name the offending file. */
export async function openHnswIndex(dir: string, options: OpenHnswOptions = {}): Promise<HnswStore> {
  assertLittleEndian();
  const { verify = 'checksum', mode = 'load' } = options;
  const meta = await readMeta(dir);
  const expansionSearch = options.expansionSearch ?? meta.hnsw.expansionSearch;
  if (!Number.isInteger(expansionSearch) || expansionSearch <= 0)
    throw new VectorIndexArgumentError('expansionSearch', `${expansionSearch} is not a positive integer`);
  const { expansionPerResult = DEFAULT_EXPANSION_PER_RESULT, searchThreads = Math.min(2, availableParallelism()) } = options;
  if (!(expansionPerResult >= 1)) throw new VectorIndexArgumentError('expansionPerResult', `${expansionPerResult} is not a number >= 1`);
  if (!Number.isInteger(searchThreads) || searchThreads <= 0)
    throw new VectorIndexArgumentError('searchThreads', `${searchThreads} is not a positive integer`);
  const exactScanMaxRows = options.exactScanMaxRows ?? DEFAULT_EXACT_SCAN_MAX_ROWS;
  if (!Number.isInteger(exactScanMaxRows) || exactScanMaxRows < 0)
    throw new VectorIndexArgumentError('exactScanMaxRows', `${exactScanMaxRows} is not a non-negative integer`);
  const neighbourCacheItems = options.neighbourCacheItems ?? DEFAULT_NEIGHBOUR_CACHE_ITEMS;
  if (!Number.isInteger(neighbourCacheItems) || neighbourCacheItems < 0)
    throw new VectorIndexArgumentError('neighbourCacheItems', `${neighbourCacheItems} is not a non-negative integer`);
  const { searchWorkers = 0 } = options;
  if (!Number.isInteger(searchWorkers) || searchWorkers < 0)
    throw new VectorIndexArgumentError('searchWorkers', `${searchWorkers} is not a non-negative integer`);

  let vectors: Float32Array = typedView(await readVerifiedFile(dir, meta, INDEX_FILES.vectors, verify), Float32Array);
  if (searchWorkers > 0) {
    // In shared memory, which the search threads read without a copy of their own: they score their candidates.
    const shared = new Float32Array(new SharedArrayBuffer(vectors.byteLength));
    shared.set(vectors);
    vectors = shared;
  }
  const categoryOfRow = typedView(await readVerifiedFile(dir, meta, INDEX_FILES.category, verify), Int32Array);
  const createdAtMs = typedView(await readVerifiedFile(dir, meta, INDEX_FILES.createdAtMs, verify), Float64Array);
  const idsPath = join(dir, INDEX_FILES.ids);
  // The ids as one buffer with a hash of rows (IdTable), read from ids.json without a JS string per id.
  let ids: IdTable;
  try {
    ids = IdTable.fromJsonArray(await readVerifiedFile(dir, meta, INDEX_FILES.ids, verify));
  } catch (error) {
    if (error instanceof IndexFileError) throw error;
    throw new IndexFileError(idsPath, `not a JSON array of distinct strings (${(error as Error).message})`);
  }
  if (ids.size !== meta.count) throw new IndexFileError(idsPath, `expected a JSON array of ${meta.count} strings, it holds ${ids.size}`);
  for (let i = 0; i < meta.count; i++) {
    const code = categoryOfRow[i];
    if (code < -1 || code >= meta.categories.length)
      throw new IndexFileError(
        join(dir, INDEX_FILES.category),
        `row ${i} has category code ${code}, outside the ${meta.categories.length} categories`,
      );
  }

  const queryTransform =
    meta.querySpace === undefined ? undefined : typedView(await readVerifiedFile(dir, meta, QUERY_TRANSFORM_FILE, verify), Float32Array);
  const graphPath = await verifyFileOnDisk(dir, meta, INDEX_FILES.graph, verify);
  const hnsw = { ...meta.hnsw, expansionSearch };
  const index = newUsearchIndex(meta.dim, meta.metric, hnsw, queryTransform !== undefined);
  try {
    if (mode === 'view') index.view(graphPath);
    else index.load(graphPath);
  } catch (error) {
    throw new IndexFileError(graphPath, `usearch could not ${mode} it: ${(error as Error).message}`);
  }
  const graphDim = queryTransform === undefined ? meta.dim : meta.dim + 1;
  if (index.size() !== meta.count || index.dimensions() !== graphDim)
    throw new IndexFileError(
      graphPath,
      `holds ${index.size()} vectors of dim ${index.dimensions()}, meta.json says ${meta.count} of dim ${graphDim}`,
    );
  const workers =
    searchWorkers === 0
      ? undefined
      : await GraphSearchThreads.start(
          { graphPath, dim: meta.dim, metric: meta.metric, hnsw, querySpace: queryTransform !== undefined, count: meta.count, vectors },
          searchWorkers,
          `index v${meta.version}`,
        );
  return new HnswStore(meta, index, ids, vectors, categoryOfRow, createdAtMs, {
    exactScanMaxRows,
    expansionPerResult,
    searchThreads,
    neighbourCacheItems,
    ...(queryTransform !== undefined ? { queryTransform } : {}),
    ...(workers !== undefined ? { workers } : {}),
  });
}

/** The first `wanted` of rows scored best first (a cache entry's, a search thread's) that pass `accept`. */
function passing(rows: Int32Array, scores: Float64Array, wanted: number, accept: ((row: number) => boolean) | undefined): RowMatch[] {
  const found: RowMatch[] = [];
  for (let i = 0; i < rows.length && found.length < wanted; i++) {
    const row = rows[i]!;
    if (accept === undefined || accept(row)) found.push({ row, score: scores[i]! });
  }
  return found;
}

/**
 * Graph results to ask for so that `wanted` of them pass a search's filters, in a catalogue of `count` rows of which
 * `categoryCount` pass the category filters and `excluded` more are excluded by id. With no category filter this is
 * exact: only the excluded rows can fail, so wanted + excluded always leave `wanted` (the beam is the cost of the search,
 * and a margin here bought nothing). With category filters the pass rate is the catalogue's, not that of the query's
 * neighbourhood, so a quarter more is asked; too few still widen the search.
 */
export function graphFetch(wanted: number, excluded: number, categoryCount: number, count: number): number {
  if (categoryCount >= count) return Math.min(count, wanted + excluded);
  return Math.min(count, Math.ceil(((wanted + excluded) / (categoryCount / count)) * 1.25));
}

/** How an opened store searches. */
interface SearchSettings {
  exactScanMaxRows: number;
  expansionPerResult: number;
  searchThreads: number;
  neighbourCacheItems: number;
  /** A⁻¹ of the query-aware space, when the graph lives in it. */
  queryTransform?: Float32Array;
  /** Threads that run `search`'s graph searches (OpenHnswOptions.searchWorkers). */
  workers?: GraphSearchThreads;
}

/** How a search is answered: nothing qualifies, an exact scan, or the graph (fetching `fetch`, widening up to `maxFetch`). */
type SearchPlan =
  | { kind: 'empty' }
  | { kind: 'exact'; wanted: number; filter: RowFilter }
  | { kind: 'graph'; wanted: number; filter: RowFilter; fetch: number; maxFetch: number };

/** An item's graph neighbours as similar keeps them: rows and exact scores, best first, from a search `depth` deep. */
interface CachedNeighbours {
  depth: number;
  rows: Int32Array;
  scores: Float64Array;
}

/** What similar does for an id (similarStep). */
type SimilarStep =
  | { kind: 'unknown' }
  | { kind: 'uncached'; index: Index; vector: Float32Array; plan: SearchPlan }
  | {
      kind: 'cache';
      index: Index;
      row: number;
      vector: Float32Array;
      plan: Extract<SearchPlan, { kind: 'graph' }>;
      /** The graph search a miss makes. */
      depth: number;
      /** The item's entry, when it answers this request's beam. */
      cached: CachedNeighbours | undefined;
    };

/** A compiled search filter over rows. */
interface RowFilter {
  /** Rows that pass the category filters, before id exclusions. */
  categoryCount: number;
  /** When include categories are given, exactly the rows of those categories (ascending). */
  includedRows: Int32Array | undefined;
  /** Excluded rows that would otherwise pass. */
  excludedRows: Set<number>;
  accept: ((row: number) => boolean) | undefined;
}

/**
 * An embedded HNSW index (usearch) with the raw vectors beside it: candidates from the graph are re-scored exactly,
 * so scores equal exactSearch's and ties always break towards the lower row (the build order).
 */
export class HnswStore implements VectorStore {
  private index: Index | undefined;
  private readonly categoryCode = new Map<string, number>();
  private readonly categoryCounts: Int32Array;
  private rowsOfCategory: Int32Array[] | undefined;
  private readonly infoValue: IndexInfo;
  private readonly space: { dim: number; queryTransform: Float32Array } | undefined;
  /** The smallest and largest item norms (for scoreBound). */
  private readonly norms: { min: number; max: number };

  constructor(
    readonly meta: HnswIndexMeta,
    index: Index,
    /** Item ids by row (the build order). */
    private readonly ids: IdTable,
    private readonly vectors: Float32Array,
    private readonly categoryOfRow: Int32Array,
    private readonly createdAtMs: Float64Array,
    private readonly settings: SearchSettings,
  ) {
    this.index = index;
    meta.categories.forEach((category, code) => this.categoryCode.set(category, code));
    this.categoryCounts = new Int32Array(meta.categories.length);
    for (let i = 0; i < categoryOfRow.length; i++) if (categoryOfRow[i] >= 0) this.categoryCounts[categoryOfRow[i]]++;
    this.infoValue = {
      version: meta.version,
      backend: 'embedded',
      size: meta.count,
      dimension: meta.dim,
      metric: meta.metric,
      modelVersion: meta.modelVersion,
    };
    if (settings.queryTransform !== undefined) this.space = { dim: meta.dim, queryTransform: settings.queryTransform };
    this.norms = normRange(vectors, meta.dim);
  }

  scoreBound(vector: Float32Array): number {
    this.openIndex();
    this.checkQuery(vector, 'vector');
    let squared = 0;
    for (let j = 0; j < vector.length; j++) squared += vector[j] * vector[j];
    const norm = Math.sqrt(squared);
    const { min, max } = this.norms;
    // A relative margin covers the rounding of the scores' own sums (exact in float64 to far better than that).
    const slack = 1e-9;
    switch (this.meta.metric) {
      case 'ip':
        return norm * max * (1 + slack) + slack;
      case 'cos':
        return 1 + slack;
      case 'l2':
        // |v − x| ≥ | |v| − |x| |, and |x| lies within [min, max].
        return -Math.max(0, norm - max, min - norm) * (1 - slack) + slack;
    }
  }

  info(): IndexInfo {
    return { ...this.infoValue };
  }

  /** The payload stored for an item, or undefined for an unknown id. */
  payloadOf(id: string): ItemPayload | undefined {
    const row = this.ids.rowOf(id);
    return row < 0 ? undefined : this.rowPayload(row);
  }

  payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]> {
    this.openIndex();
    if (!Array.isArray(ids)) return Promise.reject(new VectorIndexArgumentError('ids', 'an array of item ids is required'));
    // Every id's row, then every row's payload values, then the payloads: the reads of different items overlap.
    const rows = this.ids.rowsOf(ids);
    this.touchPayloads(rows, rows.length);
    return Promise.resolve(Array.from(rows, (row) => (row < 0 ? undefined : this.rowPayload(row))));
  }

  /** Reads the payload values of rows[0..n) ahead of rowPayload, so that their cache misses overlap (touchRows). */
  private touchPayloads(rows: ArrayLike<number>, n: number): void {
    touchRows(this.categoryOfRow, rows, 1, n);
    touchRows(this.createdAtMs, rows, 1, n);
  }

  /** Scratch rows, kept between searches (each uses them synchronously). */
  private rowScratch: Int32Array = new Int32Array(0);

  private rowPayload(row: number): ItemPayload {
    // Built field by field: this runs for every result of every search.
    const payload: ItemPayload = {};
    const code = this.categoryOfRow[row];
    if (code >= 0) payload.category = this.meta.categories[code];
    const created = this.createdAtMs[row];
    if (!Number.isNaN(created)) payload.createdAtMs = created;
    return payload;
  }

  /** searchNow's answer; with search workers, the first graph search runs on one of them (widening stays here). */
  async search(vector: Float32Array, k: number, options: SearchOptions = {}): Promise<Neighbour[]> {
    const { workers } = this.settings;
    if (workers === undefined) return this.searchNow(vector, k, options);
    const opened = this.openIndex();
    this.checkQuery(vector, 'vector');
    return this.answerOnThreads(workers, opened, vector, this.plan(k, options));
  }

  /** answer, with the first graph search on a search thread. */
  private async answerOnThreads(workers: GraphSearchThreads, opened: Index, vector: Float32Array, plan: SearchPlan): Promise<Neighbour[]> {
    if (plan.kind !== 'graph') return this.answer(opened, vector, plan);
    const answer = await workers.search(this.graphVector(vector), vector, this.beam(plan.fetch, plan.wanted));
    // The store may have closed while the thread searched; a search no thread answered is done here.
    const index = this.openIndex();
    const found =
      answer === undefined
        ? this.hnsw(index, vector, plan.fetch, plan.wanted, plan.filter.accept)
        : this.fromThread(vector, answer, plan.wanted, plan.filter.accept);
    return this.widen(index, vector, plan, found);
  }

  /** What the search workers did (undefined without them). */
  searchWorkerStats(): SearchThreadStats | undefined {
    return this.settings.workers?.stats();
  }

  /** Ends one search worker as a crash would (for the specs). */
  crashSearchWorker(): Promise<void> {
    if (this.settings.workers === undefined) throw new Error('this store has no search workers');
    return this.settings.workers.crashOne();
  }

  /** search, synchronously: the work is CPU-bound and short, so there is nothing to await. */
  searchNow(vector: Float32Array, k: number, options: SearchOptions = {}): Neighbour[] {
    const index = this.openIndex();
    this.checkQuery(vector, 'vector');
    return this.answer(index, vector, this.plan(k, options));
  }

  /** A planned search's answer: nothing, an exact scan, or the graph (widened as needed). */
  private answer(index: Index, vector: Float32Array, plan: SearchPlan): Neighbour[] {
    if (plan.kind === 'empty') return [];
    if (plan.kind === 'exact') return this.exact(vector, plan.wanted, plan.filter);
    return this.widen(index, vector, plan, this.hnsw(index, vector, plan.fetch, plan.wanted, plan.filter.accept));
  }

  /** similarNow's answer; with search workers, a graph search the cache cannot answer runs on one of them. */
  async similar(id: string, k: number, options: SearchOptions = {}): Promise<Neighbour[]> {
    const { workers } = this.settings;
    if (workers === undefined) return this.similarNow(id, k, options);
    const step = this.similarStep(id, k, options);
    if (step.kind === 'unknown') return [];
    if (step.kind === 'uncached') return this.answerOnThreads(workers, step.index, step.vector, step.plan);
    let { cached } = step;
    if (cached === undefined) {
      const answer = await workers.search(this.graphVector(step.vector), step.vector, step.depth);
      // The store may have closed while the thread searched; a search no thread answered is done here.
      cached = this.cacheNeighbours(step, this.openIndex(), answer);
    }
    return this.fromCache(step, cached);
  }

  /**
   * similar, synchronously. An item's graph neighbours (rows and exact scores, best first: one graph search as deep as
   * the request's beam plus a quarter of the results wanted, nothing filtered) are kept for the next request that names
   * it, least recently used dropped first; each request filters them itself. The cache answers when the request's own
   * graph beam is no deeper than the cached search and `wanted` of the cached neighbours pass its filters: the top of a
   * search at least as deep as `search` would make. A deeper beam searches again (and keeps the deeper answer); category
   * filters (whose fetch follows the catalogue's pass rate), or too few passing (only where the graph gave fewer than
   * asked), are answered as `search` answers them, from the same plan.
   */
  similarNow(id: string, k: number, options: SearchOptions = {}): Neighbour[] {
    const step = this.similarStep(id, k, options);
    if (step.kind === 'unknown') return [];
    if (step.kind === 'uncached') return this.answer(step.index, step.vector, step.plan);
    return this.fromCache(step, step.cached ?? this.cacheNeighbours(step, step.index));
  }

  /** What similar does for an id: nothing (unknown), a plain search (the cache does not apply), or the cache's entry. */
  private similarStep(id: string, k: number, options: SearchOptions): SimilarStep {
    const index = this.openIndex();
    if (typeof id !== 'string') throw new VectorIndexArgumentError('id', `${describe(id)} is not an item id`);
    const row = this.ids.rowOf(id);
    if (row < 0) return { kind: 'unknown' };
    const { dim } = this.meta;
    const vector = this.vectors.subarray(row * dim, (row + 1) * dim);
    const plan = this.plan(k, options);
    const capacity = this.settings.neighbourCacheItems;
    if (plan.kind !== 'graph' || capacity === 0 || plan.filter.categoryCount !== this.meta.count)
      return { kind: 'uncached', index, vector, plan };
    const beam = this.beam(plan.fetch, plan.wanted);
    let cached = this.neighbourCache.get(row);
    if (cached !== undefined && cached.depth < beam) cached = undefined;
    if (cached === undefined) this.neighbourCacheCounts.misses++;
    else this.neighbourCacheCounts.hits++;
    const depth = Math.min(this.meta.count, beam + Math.ceil(NEIGHBOUR_CACHE_MARGIN * plan.wanted));
    return { kind: 'cache', index, row, vector, plan, depth, cached };
  }

  /**
   * An item's cache entry: a search thread's candidates as it scored them, else the graph's (the thread's, or searched
   * here when no thread answered) re-scored exactly.
   */
  private cacheNeighbours(step: Extract<SimilarStep, { kind: 'cache' }>, index: Index, answer?: ThreadAnswer): CachedNeighbours {
    if (answer !== undefined && 'rows' in answer) return { depth: step.depth, rows: answer.rows, scores: answer.scores };
    const keys = answer?.keys ?? index.search(this.graphVector(step.vector), step.depth, 1).keys;
    const found = this.rescore(step.vector, keys, step.depth, undefined);
    return { depth: step.depth, rows: Int32Array.from(found, (m) => m.row), scores: Float64Array.from(found, (m) => m.score) };
  }

  /** The request's answer from an item's cache entry (kept as its most recently used), else as `search` answers it. */
  private fromCache(step: Extract<SimilarStep, { kind: 'cache' }>, cached: CachedNeighbours): Neighbour[] {
    const cache = this.neighbourCache;
    // Most recently used last; the least recently used dropped past the capacity.
    cache.delete(step.row);
    cache.set(step.row, cached);
    if (cache.size > this.settings.neighbourCacheItems) cache.delete(cache.keys().next().value as number);
    const { plan } = step;
    const matches = passing(cached.rows, cached.scores, plan.wanted, plan.filter.accept);
    if (matches.length < plan.wanted) return this.answer(this.openIndex(), step.vector, plan);
    return this.neighbours(matches);
  }

  /** What `similar` found in its cache (hits) and searched for (misses) since the store opened, and how many items it keeps. */
  neighbourCacheStats(): { hits: number; misses: number; items: number } {
    return { ...this.neighbourCacheCounts, items: this.neighbourCache.size };
  }

  /** Items' graph neighbours by row (similar), least recently used first. */
  private readonly neighbourCache = new Map<number, CachedNeighbours>();
  private readonly neighbourCacheCounts = { hits: 0, misses: 0 };

  async searchBatch(vectors: readonly Float32Array[], k: number, options: SearchOptions = {}): Promise<Neighbour[][]> {
    return this.searchBatchNow(vectors, k, options);
  }

  /**
   * searchBatch, synchronously: one usearch call searches every vector on `searchThreads` threads; a vector whose
   * fetch falls short of k after the filters widens alone, as search would.
   */
  searchBatchNow(vectors: readonly Float32Array[], k: number, options: SearchOptions = {}): Neighbour[][] {
    const index = this.openIndex();
    if (!Array.isArray(vectors)) throw new VectorIndexArgumentError('vectors', 'an array of Float32Array vectors is required');
    vectors.forEach((vector, i) => this.checkQuery(vector, `vectors[${i}]`));
    const plan = this.plan(k, options);
    if (plan.kind === 'empty' || vectors.length === 0) return vectors.map(() => []);
    if (plan.kind === 'exact') return vectors.map((vector) => this.exact(vector, plan.wanted, plan.filter));
    if (vectors.length === 1) return [this.searchNow(vectors[0], k, options)];
    const width = this.space === undefined ? this.meta.dim : this.meta.dim + 1;
    const queries = new Float32Array(vectors.length * width);
    vectors.forEach((vector, i) => queries.set(this.graphVector(vector), i * width));
    const beam = this.beam(plan.fetch, plan.wanted);
    // Several rows make usearch answer a BatchMatches (its typings pick the one-vector overload for a Float32Array).
    const { keys, counts } = index.search(queries, beam, this.settings.searchThreads) as unknown as BatchMatches;
    return vectors.map((vector, i) => {
      const found = this.rescore(vector, keys.subarray(i * beam, i * beam + Number(counts[i])), plan.wanted, plan.filter.accept);
      return this.widen(index, vector, plan, found);
    });
  }

  private checkQuery(vector: Float32Array, field: string): void {
    const { dim } = this.meta;
    if (!(vector instanceof Float32Array) || vector.length !== dim)
      throw new VectorIndexArgumentError(field, `expected a Float32Array of ${dim} values, got ${describe(vector)}`);
    for (let j = 0; j < dim; j++) if (!Number.isFinite(vector[j])) throw new VectorIndexArgumentError(field, `value ${j} is not finite`);
  }

  private plan(k: number, options: SearchOptions): SearchPlan {
    if (!Number.isInteger(k) || k <= 0) throw new VectorIndexArgumentError('k', `${k} is not a positive integer`);
    const { count } = this.meta;
    const filter = this.compileFilter(options);
    const wanted = Math.min(k, filter.categoryCount - filter.excludedRows.size);
    if (wanted <= 0) return { kind: 'empty' };
    const candidates = filter.includedRows?.length ?? count;
    if (candidates <= this.settings.exactScanMaxRows) return { kind: 'exact', wanted, filter };

    // Over-fetch for the filters, widening until `wanted` qualify. A graph search for F results costs about as much as
    // scanning ~30·F rows exactly, so few included rows, or a fetch past count/32, are scanned instead.
    const fetch = graphFetch(wanted, filter.excludedRows.size, filter.categoryCount, count);
    const maxFetch = Math.min(count, Math.max(4 * wanted, Math.floor(count / 32)));
    if (fetch > maxFetch || (filter.includedRows !== undefined && candidates <= 16 * fetch)) return { kind: 'exact', wanted, filter };
    return { kind: 'graph', wanted, filter, fetch, maxFetch };
  }

  /** The first graph answer if `wanted` qualified, else wider graph searches, else an exact scan. */
  private widen(index: Index, vector: Float32Array, plan: Extract<SearchPlan, { kind: 'graph' }>, first: RowMatch[]): Neighbour[] {
    const { wanted, filter, maxFetch } = plan;
    let { fetch } = plan;
    let found = first;
    for (;;) {
      if (found.length >= wanted) return this.neighbours(found.slice(0, wanted));
      if (fetch >= maxFetch) break;
      fetch = Math.min(maxFetch, fetch * 4);
      found = this.hnsw(index, vector, fetch, wanted, filter.accept);
    }
    return this.exact(vector, wanted, filter);
  }

  /** Graph candidates asked for: `fetch` (the filters' over-fetch), and at least expansionPerResult per result wanted. */
  private beam(fetch: number, wanted: number): number {
    return Math.min(this.meta.count, Math.max(fetch, Math.ceil(wanted * this.settings.expansionPerResult)));
  }

  /** The query as the graph is searched: itself, or mapped into the query-aware space. */
  private graphVector(vector: Float32Array): Float32Array {
    return this.space === undefined ? vector : graphQuery(this.space, vector);
  }

  /** Candidates from the graph, re-scored exactly, filtered, best first. */
  private hnsw(
    index: Index,
    vector: Float32Array,
    fetch: number,
    wanted: number,
    accept: ((row: number) => boolean) | undefined,
  ): RowMatch[] {
    const { keys } = index.search(this.graphVector(vector), this.beam(fetch, wanted), 1);
    return this.rescore(vector, keys, wanted, accept);
  }

  /** The best `wanted` of a search thread's candidates that pass `accept`: scored there, or re-scored here. */
  private fromThread(
    vector: Float32Array,
    answer: ThreadAnswer,
    wanted: number,
    accept: ((row: number) => boolean) | undefined,
  ): RowMatch[] {
    return 'rows' in answer ? passing(answer.rows, answer.scores, wanted, accept) : this.rescore(vector, answer.keys, wanted, accept);
  }

  /** The best `wanted` of the graph's candidates that pass `accept`, re-scored exactly, best first. */
  private rescore(vector: Float32Array, keys: BigUint64Array, wanted: number, accept: ((row: number) => boolean) | undefined): RowMatch[] {
    const { vectors } = this;
    const { dim, metric } = this.meta;
    const n = keys.length;
    const rows = (this.rowScratch = scratchOf(this.rowScratch, n));
    for (let i = 0; i < n; i++) rows[i] = Number(keys[i]);
    // Every candidate's vector read first, the reads overlapping, then the exact scores from the cache (touchRows).
    touchRows(vectors, rows, dim, n);
    // A bounded heap rather than sorting every candidate: the beam is often twice the results wanted.
    const top = new TopK(wanted);
    for (let i = 0; i < n; i++) {
      const row = rows[i]!;
      if (accept !== undefined && !accept(row)) continue;
      const score = scoreRow(vectors, dim, metric, vector, row);
      if (score >= top.threshold) top.push(score, row);
    }
    return top.sorted();
  }

  private exact(vector: Float32Array, k: number, filter: RowFilter): Neighbour[] {
    const { dim, metric } = this.meta;
    const options = { ...(filter.accept ? { accept: filter.accept } : {}), ...(filter.includedRows ? { rows: filter.includedRows } : {}) };
    return this.neighbours(exactSearch(this.vectors, dim, metric, vector, k, options));
  }

  private neighbours(matches: RowMatch[]): Neighbour[] {
    // The rows' payload values and ids read in passes (their reads overlap), then the results built.
    const n = matches.length;
    const rows = (this.rowScratch = scratchOf(this.rowScratch, n));
    for (let k = 0; k < n; k++) rows[k] = matches[k]!.row;
    this.touchPayloads(rows, n);
    const ids = this.ids.idsAt(rows, n);
    return matches.map(({ row, score }, k) => ({ id: ids[k]!, score, payload: this.rowPayload(row) }));
  }

  private compileFilter(options: SearchOptions): RowFilter {
    const { excludeIds, includeCategories, excludeCategories } = options;
    const { categoryOfRow } = this;
    // An empty include list means "no restriction", as an unset repeated field arrives as [].
    const include =
      includeCategories !== undefined && includeCategories.length > 0 ? this.codes(includeCategories, 'includeCategories') : undefined;
    const exclude =
      excludeCategories !== undefined && excludeCategories.length > 0 ? this.codes(excludeCategories, 'excludeCategories') : undefined;
    if (include !== undefined && exclude !== undefined) for (const code of exclude) include.delete(code);
    const categoryPasses = (row: number): boolean => {
      const code = categoryOfRow[row];
      if (include !== undefined) return include.has(code);
      return exclude === undefined || !exclude.has(code);
    };

    let categoryCount = this.meta.count;
    let includedRows: Int32Array | undefined;
    if (include !== undefined) {
      categoryCount = 0;
      for (const code of include) categoryCount += this.categoryCounts[code];
      includedRows = this.rowsOf(include, categoryCount);
    } else if (exclude !== undefined) {
      for (const code of exclude) categoryCount -= this.categoryCounts[code];
    }

    const excludedRows = new Set<number>();
    if (excludeIds !== undefined) {
      if (!(excludeIds instanceof Set)) throw new VectorIndexArgumentError('excludeIds', 'a Set of item ids is required');
      for (const id of excludeIds) {
        const row = this.ids.rowOf(id);
        if (row >= 0 && categoryPasses(row)) excludedRows.add(row);
      }
    }
    const byCategory = include !== undefined || exclude !== undefined;
    let accept: ((row: number) => boolean) | undefined;
    if (byCategory && excludedRows.size > 0) accept = (row) => categoryPasses(row) && !excludedRows.has(row);
    else if (byCategory) accept = categoryPasses;
    else if (excludedRows.size > 0) accept = (row) => !excludedRows.has(row);
    return { categoryCount, includedRows, excludedRows, accept };
  }

  /** Category codes of names; names the index has never seen match no item. */
  private codes(names: readonly string[], field: string): Set<number> {
    if (!Array.isArray(names)) throw new VectorIndexArgumentError(field, 'an array of category names is required');
    const codes = new Set<number>();
    for (const name of names) {
      if (typeof name !== 'string') throw new VectorIndexArgumentError(field, `${describe(name)} is not a category name`);
      const code = this.categoryCode.get(name);
      if (code !== undefined) codes.add(code);
    }
    return codes;
  }

  /** The rows of the given categories, ascending (per-category lists are built on first use). */
  private rowsOf(codes: Set<number>, total: number): Int32Array {
    if (this.rowsOfCategory === undefined) {
      const lists = Array.from(this.categoryCounts, (n) => new Int32Array(n));
      const filled = new Int32Array(lists.length);
      for (let row = 0; row < this.categoryOfRow.length; row++) {
        const code = this.categoryOfRow[row];
        if (code >= 0) lists[code][filled[code]++] = row;
      }
      this.rowsOfCategory = lists;
    }
    if (codes.size === 1) return this.rowsOfCategory[codes.values().next().value as number];
    const rows = new Int32Array(total);
    let offset = 0;
    for (const code of codes) {
      rows.set(this.rowsOfCategory[code], offset);
      offset += this.rowsOfCategory[code].length;
    }
    return rows.sort();
  }

  async getVectors(ids: readonly string[]): Promise<(Float32Array | undefined)[]> {
    return this.getVectorsNow(ids);
  }

  getVectorsNow(ids: readonly string[]): (Float32Array | undefined)[] {
    this.openIndex();
    if (!Array.isArray(ids)) throw new VectorIndexArgumentError('ids', 'an array of item ids is required');
    const { dim } = this.meta;
    return ids.map((id) => {
      const row = this.ids.rowOf(id);
      // A copy: callers may modify it without corrupting the store.
      return row < 0 ? undefined : this.vectors.slice(row * dim, (row + 1) * dim);
    });
  }

  async close(): Promise<void> {
    // usearch frees its memory when the Index is collected; dropping the reference is all there is to do here.
    this.index = undefined;
    await this.settings.workers?.close();
  }

  get closed(): boolean {
    return this.index === undefined;
  }

  private openIndex(): Index {
    if (this.index === undefined) throw new StoreClosedError(`embedded index version ${this.meta.version}`);
    return this.index;
  }
}

function normRange(vectors: Float32Array, dim: number): { min: number; max: number } {
  let min = Infinity;
  let max = 0;
  for (let base = 0; base < vectors.length; base += dim) {
    let squared = 0;
    for (let j = 0; j < dim; j++) squared += vectors[base + j] * vectors[base + j];
    if (squared < min) min = squared;
    if (squared > max) max = squared;
  }
  return { min: Math.sqrt(min === Infinity ? 0 : min), max: Math.sqrt(max) };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of length ${(value as Float32Array).length}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return typeof value;
}
