import { createHash } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { validateBuildInput } from './build-input.js';
import { StoreClosedError, VectorIndexArgumentError } from './errors.js';
import { assertVersionName, compareVersions } from './versions.js';
import {
  METRICS,
  type IndexBuildInput,
  type IndexInfo,
  type ItemPayload,
  type Metric,
  type Neighbour,
  type SearchOptions,
  type VectorStore,
} from './vector-store.js';

export interface QdrantConnection {
  url: string;
  apiKey?: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

const DISTANCE: Record<Metric, 'Dot' | 'Cosine' | 'Euclid'> = { ip: 'Dot', cos: 'Cosine', l2: 'Euclid' };

/** Payload keys stored with every point. */
export const QDRANT_PAYLOAD = { itemId: 'item_id', category: 'category', createdAtMs: 'created_at_ms' } as const;

export function qdrantClient(connection: QdrantConnection): QdrantClient {
  const { url, apiKey, timeoutMs = 10_000 } = connection;
  // The compatibility check is a background request whose failure only logs; start-up errors surface on first use.
  return new QdrantClient({ url, ...(apiKey !== undefined ? { apiKey } : {}), timeout: timeoutMs, checkCompatibility: false });
}

/** The collection holding one version: `<base>_v<version>`. */
export function qdrantCollectionName(base: string, version: string): string {
  return `${base}_v${version}`;
}

function assertBaseName(base: string): void {
  if (typeof base !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(base))
    throw new VectorIndexArgumentError('collection', `"${String(base)}" is not a valid base collection name (letters, digits, '_' or '-')`);
}

/**
 * The Qdrant point id of an item: a name-based UUID (version 5 layout, SHA-1 of a fixed prefix and the id), so any
 * process maps item ids to points — for exclusion filters and getVectors — without a lookup.
 */
export function qdrantPointId(itemId: string): string {
  const hash = createHash('sha1').update('recsys-item:').update(itemId, 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface PublishQdrantOptions {
  /** Points per upsert request (default 512). */
  batchSize?: number;
  /** Versions to keep, the serving one included (default 2, so the one just replaced stays for in-flight reads and rollback). */
  retain?: number;
  /** HNSW parameters of the new collection (default Qdrant's). */
  hnsw?: { m?: number; efConstruct?: number };
  /** Called after each upserted batch. */
  onProgress?: (done: number, total: number) => void;
}

/** The collection metadata every published version carries. */
interface CollectionMetadata {
  /** The alias (base name) the collection belongs to: retention deletes only collections that carry it. */
  base: string;
  version: string;
  model_version: string;
  metric: Metric;
  dim: number;
  count: number;
}

/**
 * Creates `<base>_v<version>`, upserts every item (waiting for each batch), checks the point count, then points the
 * alias `<base>` at it in one atomic `updateCollectionAliases` call and deletes versions beyond `retain`. A collection
 * of this version that is not serving (a failed earlier publish) is dropped and rebuilt; a serving one is refused.
 */
export async function publishQdrantIndex(
  connection: QdrantConnection,
  base: string,
  input: IndexBuildInput,
  options: PublishQdrantOptions = {},
): Promise<IndexInfo> {
  assertBaseName(base);
  validateBuildInput(input);
  const { batchSize = 512, retain = 2, onProgress } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new VectorIndexArgumentError('batchSize', `${batchSize} is not a positive integer`);
  if (!Number.isInteger(retain) || retain < 1) throw new VectorIndexArgumentError('retain', `${retain} is not a positive integer`);
  const client = qdrantClient(connection);
  const name = qdrantCollectionName(base, input.version);
  const { ids, vectors, dim, metric, payload } = input;

  const serving = await aliasTarget(client, base);
  if (serving === name) throw new VectorIndexArgumentError('version', `${name} is already serving as ${base}: versions are immutable`);
  if ((await client.collectionExists(name)).exists) await client.deleteCollection(name);

  const metadata: CollectionMetadata = { base, version: input.version, model_version: input.modelVersion, metric, dim, count: ids.length };
  await client.createCollection(name, {
    vectors: { size: dim, distance: DISTANCE[metric] },
    ...(options.hnsw ? { hnsw_config: { m: options.hnsw.m, ef_construct: options.hnsw.efConstruct } } : {}),
    metadata: { ...metadata },
  });
  await client.createPayloadIndex(name, { field_name: QDRANT_PAYLOAD.category, field_schema: 'keyword', wait: true });
  await client.createPayloadIndex(name, { field_name: QDRANT_PAYLOAD.createdAtMs, field_schema: 'integer', wait: true });
  await client.createPayloadIndex(name, { field_name: QDRANT_PAYLOAD.itemId, field_schema: 'keyword', wait: true });

  for (let start = 0; start < ids.length; start += batchSize) {
    const end = Math.min(ids.length, start + batchSize);
    const points = [];
    for (let i = start; i < end; i++) {
      const item = payload?.[i];
      points.push({
        id: qdrantPointId(ids[i]),
        vector: Array.from(vectors.subarray(i * dim, (i + 1) * dim)),
        payload: {
          [QDRANT_PAYLOAD.itemId]: ids[i],
          ...(item?.category !== undefined ? { [QDRANT_PAYLOAD.category]: item.category } : {}),
          ...(item?.createdAtMs !== undefined ? { [QDRANT_PAYLOAD.createdAtMs]: item.createdAtMs } : {}),
        },
      });
    }
    await client.upsert(name, { wait: true, points });
    onProgress?.(end, ids.length);
  }
  const { count } = await client.count(name, { exact: true });
  if (count !== ids.length) throw new Error(`${name}: holds ${count} points after upserting ${ids.length} items`);

  // Re-read: another publisher may have moved the alias meanwhile; the swap must delete whatever it points at now.
  const aliased = await aliasTarget(client, base);
  await client.updateCollectionAliases({
    actions: [
      ...(aliased !== undefined ? [{ delete_alias: { alias_name: base } }] : []),
      { create_alias: { collection_name: name, alias_name: base } },
    ],
  });
  await deleteOldVersions(client, base, name, retain);
  return { version: input.version, backend: 'qdrant', size: ids.length, dimension: dim, metric, modelVersion: input.modelVersion };
}

/** The collection an alias points at, or undefined. */
async function aliasTarget(client: QdrantClient, alias: string): Promise<string | undefined> {
  const { aliases } = await client.getAliases();
  return aliases.find((a) => a.alias_name === alias)?.collection_name;
}

/** Versions of `base` that exist in Qdrant, oldest first. */
export async function listQdrantVersions(connection: QdrantConnection, base: string): Promise<string[]> {
  return versionsOf(await qdrantClient(connection).getCollections(), base);
}

function versionsOf({ collections }: { collections: { name: string }[] }, base: string): string[] {
  const prefix = `${base}_v`;
  return collections
    .map((c) => c.name)
    .filter((n) => n.startsWith(prefix))
    .map((n) => n.slice(prefix.length))
    .sort(compareVersions);
}

async function deleteOldVersions(client: QdrantClient, base: string, serving: string, retain: number): Promise<void> {
  const versions = versionsOf(await client.getCollections(), base);
  const names = versions.map((v) => qdrantCollectionName(base, v));
  const keep = new Set([serving, ...names.slice(-retain)]);
  for (const name of names) {
    if (keep.has(name)) continue;
    // `<base>_v…` could also be another base's collection (base "items" vs "items_vx"): check the owner first.
    const { config } = await client.getCollection(name);
    if ((config.metadata as Partial<CollectionMetadata> | null | undefined)?.base === base) await client.deleteCollection(name);
  }
}

export interface OpenQdrantOptions {
  /** Beam width of searches (default: Qdrant's, which is the collection's ef_construct); raised to k when k is larger. */
  hnswEf?: number;
  /** How often info() re-reads which version the alias serves (default 10 s; 0 disables; never for a pinned version). */
  refreshIntervalMs?: number;
  /**
   * Pins one version: the store queries `<base>_v<version>` itself instead of the alias, so it answers from exactly
   * that version (e.g. the one whose user tower is loaded) until it is closed, whatever the alias points at.
   */
  version?: string;
}

/**
 * Opens the serving version through the alias `base`, or the pinned `version`; fails clearly when the alias or the
 * version's collection does not exist.
 */
export async function openQdrantStore(connection: QdrantConnection, base: string, options: OpenQdrantOptions = {}): Promise<QdrantStore> {
  assertBaseName(base);
  if (options.version !== undefined) assertVersionName(options.version);
  const store = new QdrantStore(qdrantClient(connection), base, options);
  await store.reload();
  const { refreshIntervalMs = 10_000 } = options;
  if (refreshIntervalMs > 0 && options.version === undefined) store.startRefresh(refreshIntervalMs);
  return store;
}

/**
 * A VectorStore over the Qdrant alias `base`: every request names the alias, so an alias swap takes effect between
 * two requests and none fails. info() is the serving version as last read (on open, on reload(), every refresh).
 * With `version`, every request names that version's collection instead.
 */
export class QdrantStore implements VectorStore {
  private current: IndexInfo | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The collection or alias every request names. */
  readonly target: string;

  constructor(
    private readonly client: QdrantClient,
    readonly alias: string,
    private readonly options: OpenQdrantOptions = {},
  ) {
    this.target = options.version === undefined ? alias : qdrantCollectionName(alias, options.version);
  }

  info(): IndexInfo {
    if (this.current === undefined) throw new Error(`Qdrant ${this.describeTarget()} has not been read yet: call reload()`);
    return { ...this.current };
  }

  private describeTarget(): string {
    return this.options.version === undefined ? `alias ${this.alias}` : `collection ${this.target}`;
  }

  /** Re-reads the alias (unless pinned) and the serving collection's metadata. */
  async reload(): Promise<IndexInfo> {
    this.assertOpen();
    const pinned = this.options.version;
    let collection: string | undefined;
    if (pinned === undefined) {
      collection = await aliasTarget(this.client, this.alias);
      if (collection === undefined) throw new Error(`Qdrant alias ${this.alias} does not exist: publish a version first`);
    } else {
      collection = this.target;
      if (!(await this.client.collectionExists(collection)).exists)
        throw new Error(`Qdrant collection ${collection} (version ${pinned} of ${this.alias}) does not exist`);
    }
    const described = await this.client.getCollection(collection);
    const metadata = (described.config.metadata ?? {}) as Partial<CollectionMetadata>;
    if (typeof metadata.version !== 'string' || !METRICS.includes(metadata.metric as Metric) || typeof metadata.dim !== 'number')
      throw new Error(`Qdrant collection ${collection} lacks the version metadata publishQdrantIndex writes`);
    if (pinned !== undefined && (metadata.version !== pinned || metadata.base !== this.alias))
      throw new Error(
        `Qdrant collection ${collection} holds version ${metadata.version} of ${metadata.base}, not version ${pinned} of ${this.alias}`,
      );
    this.current = {
      version: metadata.version,
      backend: 'qdrant',
      size: described.points_count ?? metadata.count ?? 0,
      dimension: metadata.dim,
      metric: metadata.metric as Metric,
      modelVersion: metadata.model_version ?? '',
    };
    return { ...this.current };
  }

  startRefresh(intervalMs: number): void {
    this.stopRefresh();
    // A failed refresh keeps the last info; the next request or refresh reports the problem.
    this.timer = setInterval(() => this.reload().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  private stopRefresh(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async search(vector: Float32Array, k: number, options: SearchOptions = {}): Promise<Neighbour[]> {
    this.assertOpen();
    this.checkQuery(vector, 'vector');
    this.checkK(k);
    const response = await this.client.query(this.target, this.queryRequest(vector, k, options));
    return this.neighbours(response.points);
  }

  /** One batch request (Qdrant's query/batch) for every vector. */
  async searchBatch(vectors: readonly Float32Array[], k: number, options: SearchOptions = {}): Promise<Neighbour[][]> {
    this.assertOpen();
    if (!Array.isArray(vectors)) throw new VectorIndexArgumentError('vectors', 'an array of Float32Array vectors is required');
    vectors.forEach((vector, i) => this.checkQuery(vector, `vectors[${i}]`));
    this.checkK(k);
    if (vectors.length === 0) return [];
    const responses = await this.client.queryBatch(this.target, { searches: vectors.map((v) => this.queryRequest(v, k, options)) });
    return responses.map((response) => this.neighbours(response.points));
  }

  private checkQuery(vector: Float32Array, field: string): void {
    const { dimension } = this.info();
    if (!(vector instanceof Float32Array) || vector.length !== dimension)
      throw new VectorIndexArgumentError(field, `expected a Float32Array of ${dimension} values`);
    for (let j = 0; j < dimension; j++)
      if (!Number.isFinite(vector[j])) throw new VectorIndexArgumentError(field, `value ${j} is not finite`);
  }

  private checkK(k: number): void {
    if (!Number.isInteger(k) || k <= 0) throw new VectorIndexArgumentError('k', `${k} is not a positive integer`);
  }

  private queryRequest(vector: Float32Array, k: number, options: SearchOptions) {
    const { hnswEf } = this.options;
    return {
      query: Array.from(vector),
      limit: k,
      filter: qdrantFilter(options),
      with_payload: [QDRANT_PAYLOAD.itemId, QDRANT_PAYLOAD.category, QDRANT_PAYLOAD.createdAtMs],
      ...(hnswEf !== undefined ? { params: { hnsw_ef: Math.max(hnswEf, k) } } : {}),
    };
  }

  private neighbours(points: { score: number; payload?: Record<string, unknown> | null }[]): Neighbour[] {
    const { metric } = this.info();
    const out: Neighbour[] = points.map((point) => ({
      id: String(point.payload?.[QDRANT_PAYLOAD.itemId]),
      // Qdrant scores Euclid as a distance (lower is closer); everything here is higher-is-closer.
      score: metric === 'l2' ? -point.score : point.score,
      payload: qdrantItemPayload(point.payload),
    }));
    // Qdrant orders ties arbitrarily; the item id makes the order repeatable.
    return out.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]> {
    this.assertOpen();
    if (!Array.isArray(ids)) throw new VectorIndexArgumentError('ids', 'an array of item ids is required');
    if (ids.length === 0) return [];
    const records = await this.client.retrieve(this.target, {
      ids: [...new Set(ids)].map(qdrantPointId),
      with_vector: false,
      with_payload: [QDRANT_PAYLOAD.itemId, QDRANT_PAYLOAD.category, QDRANT_PAYLOAD.createdAtMs],
    });
    const byId = new Map<string, ItemPayload>();
    for (const record of records) {
      const itemId = record.payload?.[QDRANT_PAYLOAD.itemId];
      if (typeof itemId === 'string') byId.set(itemId, qdrantItemPayload(record.payload));
    }
    return ids.map((id) => {
      const payload = byId.get(id);
      return payload === undefined ? undefined : { ...payload };
    });
  }

  async getVectors(ids: readonly string[]): Promise<(Float32Array | undefined)[]> {
    this.assertOpen();
    if (!Array.isArray(ids)) throw new VectorIndexArgumentError('ids', 'an array of item ids is required');
    if (ids.length === 0) return [];
    const records = await this.client.retrieve(this.target, {
      ids: [...new Set(ids)].map(qdrantPointId),
      with_vector: true,
      with_payload: [QDRANT_PAYLOAD.itemId],
    });
    const byId = new Map<string, Float32Array>();
    for (const record of records) {
      const itemId = record.payload?.[QDRANT_PAYLOAD.itemId];
      if (typeof itemId === 'string' && Array.isArray(record.vector)) byId.set(itemId, Float32Array.from(record.vector as number[]));
    }
    // Separate copies so that a caller modifying one entry does not change a duplicate.
    return ids.map((id) => {
      const vector = byId.get(id);
      return vector === undefined ? undefined : vector.slice();
    });
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopRefresh();
    return Promise.resolve();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(`Qdrant store ${this.target}`);
  }
}

/** The ItemPayload of a point's payload as publishQdrantIndex writes it. */
export function qdrantItemPayload(payload: Record<string, unknown> | null | undefined): ItemPayload {
  const category = payload?.[QDRANT_PAYLOAD.category];
  const createdAtMs = payload?.[QDRANT_PAYLOAD.createdAtMs];
  return {
    ...(typeof category === 'string' ? { category } : {}),
    ...(typeof createdAtMs === 'number' && Number.isFinite(createdAtMs) ? { createdAtMs } : {}),
  };
}

/** The Qdrant filter for SearchOptions: excluded ids by point id, categories by the indexed keyword payload. */
export function qdrantFilter(options: SearchOptions): { must?: object[]; must_not?: object[] } | undefined {
  const { excludeIds, includeCategories, excludeCategories } = options;
  const must: object[] = [];
  const mustNot: object[] = [];
  if (includeCategories !== undefined && includeCategories.length > 0)
    must.push({ key: QDRANT_PAYLOAD.category, match: { any: [...includeCategories] } });
  if (excludeCategories !== undefined && excludeCategories.length > 0)
    mustNot.push({ key: QDRANT_PAYLOAD.category, match: { any: [...excludeCategories] } });
  if (excludeIds !== undefined && excludeIds.size > 0) mustNot.push({ has_id: [...excludeIds].map(qdrantPointId) });
  if (must.length === 0 && mustNot.length === 0) return undefined;
  return { ...(must.length > 0 ? { must } : {}), ...(mustNot.length > 0 ? { must_not: mustNot } : {}) };
}
