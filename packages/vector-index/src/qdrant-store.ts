import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateBuildInput } from './build-input.js';
import { StoreClosedError, VectorIndexArgumentError } from './errors.js';
import { QdrantRequestError, QdrantRest, type QdrantConnection } from './qdrant-rest.js';
import { fitQuerySpace, graphItems, graphQuery, type QuerySpace } from './query-space.js';
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

export { QdrantRest, QdrantRequestError, DEFAULT_QDRANT_TIMEOUTS, MIN_QDRANT_VERSION } from './qdrant-rest.js';
export type { QdrantConnection, QdrantTimeouts } from './qdrant-rest.js';

const DISTANCE: Record<Metric, 'Dot' | 'Cosine' | 'Euclid'> = { ip: 'Dot', cos: 'Cosine', l2: 'Euclid' };

/** Payload keys stored with every point. */
export const QDRANT_PAYLOAD = { itemId: 'item_id', category: 'category', createdAtMs: 'created_at_ms' } as const;

/**
 * Named vectors of a point: `raw` is the item vector (exact scores, getVectors); `graph` — with a query sample — is
 * the item in the query-aware space (query-space.ts), the only one Qdrant builds an HNSW graph over then.
 */
export const QDRANT_VECTORS = { raw: 'raw', graph: 'graph' } as const;

/** The layout of collections this adapter writes (metadata `layout`); other collections are not opened. */
export const QDRANT_LAYOUT = 2;

/** The query transform is kept in collection metadata: above this dimension it is refused (dim² floats). */
export const QDRANT_QUERY_SPACE_MAX_DIM = 256;

/** The collection holding one version: `<base>_v<version>` (its metadata names base and version: see ownership). */
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

/** The collection metadata every version carries; `state` turns 'complete' only once every point is in and indexed. */
export interface QdrantVersionMetadata {
  /** The alias (base name) the collection belongs to: listing and retention consider only collections naming it. */
  base: string;
  version: string;
  model_version: string;
  metric: Metric;
  dim: number;
  count: number;
  layout: number;
  state: 'building' | 'complete';
  /** Random id of the publish that created it (recognises its own collection after a timed-out create). */
  publish_id: string;
  /** Last sign of life of the publisher while building; a build silent for `staleBuildMs` is abandoned. */
  heartbeat_ms: number;
  completed_at_ms?: number;
  /** When the alias moved away from it: retention keeps it for `pinGraceMs` after, for services still pinning it. */
  superseded_at_ms?: number;
  /** The query-aware space: `transform` is A⁻¹ (dim × dim float32, little-endian, base64). */
  query_space?: { ridge: number; queries: number; transform: string };
}

/** Metadata keys `pin:<holder>` hold the last lease renewal (ms) of a store pinned to the version. */
const PIN_PREFIX = 'pin:';

export interface PublishQdrantOptions {
  /** At most this many points per upsert request (default 512). */
  batchSize?: number;
  /** At most this many bytes of JSON per upsert request (default 8 MiB; Qdrant refuses bodies over 32 MiB by default). */
  batchBytes?: number;
  /** Complete versions kept, the serving one included (default 2: the one just replaced stays for rollback). */
  retain?: number;
  /**
   * Beyond `retain`, a version is kept while a pinned store renewed its lease on it, or the alias left it, less than
   * this long ago (default 10 min): a service polling the alias less often than that never loses the version it
   * serves, even across several quick publishes.
   */
  pinGraceMs?: number;
  /** A build of this base whose heartbeat is older than this is abandoned (cleaned up) (default 10 min). */
  staleBuildMs?: number;
  /** HNSW parameters of the collection's graph (default Qdrant's). */
  hnsw?: { m?: number; efConstruct?: number };
  /**
   * Qdrant's indexing threshold (KB of vectors per segment above which it builds the HNSW graph) once the points are
   * in (default 20000, Qdrant's); indexing is off during the upload and the alias moves only after the graph is built.
   */
  indexingThresholdKb?: number;
  /**
   * A sample of the queries (rows of dim; e.g. user-tower outputs), for ip and cos indexes: each point then also
   * stores its vector in the query-aware space, which the graph is built over (see the README), and searches are
   * re-scored exactly with the raw vector, as the embedded index does.
   */
  querySample?: Float32Array;
  /** Called after each upserted batch. */
  onProgress?: (done: number, total: number) => void;
  /** Something went wrong after the new version served (retention could not delete an old one); default a process warning. */
  onWarning?: (message: string) => void;
}

export const DEFAULT_QDRANT_PUBLISH = {
  batchSize: 512,
  batchBytes: 8 * 1024 * 1024,
  retain: 2,
  pinGraceMs: 10 * 60_000,
  staleBuildMs: 10 * 60_000,
  indexingThresholdKb: 20_000,
} as const;

/** Publish heartbeats (metadata writes) at most this often. */
const HEARTBEAT_MS = 15_000;

/** The collection as GET /collections/{name} describes it (the fields used here). */
interface CollectionInfo {
  status: string;
  optimizer_status: 'ok' | { error: string };
  points_count?: number | null;
  indexed_vectors_count?: number | null;
  segments_count?: number;
  config: { metadata?: Record<string, unknown> | null };
}

interface OwnedVersion {
  name: string;
  version: string;
  meta: QdrantVersionMetadata;
  info: CollectionInfo;
}

function collectionPath(name: string, suffix = ''): string {
  return `/collections/${encodeURIComponent(name)}${suffix}`;
}

async function describeCollection(rest: QdrantRest, name: string): Promise<CollectionInfo | undefined> {
  try {
    return await rest.get<CollectionInfo>(collectionPath(name));
  } catch (error) {
    if (error instanceof QdrantRequestError && error.status === 404) return undefined;
    throw error;
  }
}

/** The metadata of a collection if this adapter wrote it for `base` under this very name, else undefined. */
function ownedMetadata(info: CollectionInfo, base: string, name: string): QdrantVersionMetadata | undefined {
  const meta = (info.config.metadata ?? {}) as Partial<QdrantVersionMetadata>;
  if (meta.base !== base || typeof meta.version !== 'string' || qdrantCollectionName(base, meta.version) !== name) return undefined;
  if (meta.layout !== QDRANT_LAYOUT || (meta.state !== 'building' && meta.state !== 'complete')) return undefined;
  if (!METRICS.includes(meta.metric as Metric) || typeof meta.dim !== 'number' || typeof meta.count !== 'number') return undefined;
  return meta as QdrantVersionMetadata;
}

/**
 * The collections of `base`, oldest version first: names `<base>_v…` whose metadata names this base and version
 * (so base `items` never counts `items_vx_v1`, which belongs to base `items_vx`).
 */
async function ownedVersions(rest: QdrantRest, base: string): Promise<OwnedVersion[]> {
  const { collections } = await rest.get<{ collections: { name: string }[] }>('/collections');
  const prefix = `${base}_v`;
  const out: OwnedVersion[] = [];
  for (const { name } of collections) {
    if (!name.startsWith(prefix)) continue;
    const info = await describeCollection(rest, name);
    const meta = info && ownedMetadata(info, base, name);
    if (info && meta) out.push({ name, version: meta.version, meta, info });
  }
  return out.sort((a, b) => compareVersions(a.version, b.version));
}

/** The collection an alias points at, or undefined. */
async function aliasTarget(rest: QdrantRest, alias: string): Promise<string | undefined> {
  const { aliases } = await rest.get<{ aliases: { alias_name: string; collection_name: string }[] }>('/aliases');
  return aliases.find((a) => a.alias_name === alias)?.collection_name;
}

/** Complete versions of `base` in Qdrant, oldest first (unfinished and other bases' collections are not listed). */
export async function listQdrantVersions(connection: QdrantConnection, base: string): Promise<string[]> {
  assertBaseName(base);
  const rest = new QdrantRest(connection);
  try {
    await rest.checkServer();
    return (await ownedVersions(rest, base)).filter((v) => v.meta.state === 'complete').map((v) => v.version);
  } finally {
    rest.close();
  }
}

/** Publishing stopped because the alias already serves a newer version (published concurrently). */
export class QdrantPublishConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QdrantPublishConflictError';
  }
}

function checkPositiveInt(field: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min) throw new VectorIndexArgumentError(field, `${value} is not an integer >= ${min}`);
}

/** A float32 as the shortest decimal that reads back as the same float32 (9 significant digits suffice). */
function f32(value: number): string {
  return JSON.stringify(Number(value.toPrecision(9)));
}

function vectorJson(values: Float32Array, start: number, end: number): string {
  const parts = new Array<string>(end - start);
  for (let i = start; i < end; i++) parts[i - start] = f32(values[i]);
  return `[${parts.join(',')}]`;
}

function encodeTransform(transform: Float32Array): string {
  return Buffer.from(transform.buffer, transform.byteOffset, transform.byteLength).toString('base64');
}

function decodeTransform(text: string, dim: number, collection: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== dim * dim * 4)
    throw new Error(`Qdrant collection ${collection}: its query transform holds ${bytes.length} bytes, not ${dim}×${dim} float32`);
  const out = new Float32Array(dim * dim);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Whether the new collection is ready to serve: optimisations done and every segment above the threshold indexed. */
function indexed(info: CollectionInfo, thresholdKb: number, bytesPerVector: number): boolean {
  if (info.status !== 'green' || info.optimizer_status !== 'ok') return false;
  const points = info.points_count ?? 0;
  // A segment holding less than the threshold stays unindexed by design (a plain scan is as fast there).
  const unindexedAllowed = (info.segments_count ?? 1) * Math.floor((thresholdKb * 1024) / bytesPerVector);
  return (info.indexed_vectors_count ?? 0) >= points - unindexedAllowed;
}

/**
 * Publishes `input` as `<base>_v<version>` and points the alias `<base>` at it, all or nothing:
 *
 * 1. refuses a version that does not sort after every complete version of the base, that exists complete, or that
 *    another publisher is building (heartbeat younger than `staleBuildMs`); an abandoned build is dropped;
 * 2. creates the collection with indexing off and metadata `state: 'building'`, upserts the points in requests bounded
 *    by `batchSize` and `batchBytes` (waited; timed-out, 429 and 5xx upserts are retried — point ids are derived from
 *    item ids, so a repeated upsert writes the same points), checks the count, turns indexing on and waits for the
 *    collection to be green and indexed, then marks it `complete`; any failure deletes the collection;
 * 3. moves the alias (delete + create in one atomic call) unless it already serves a newer version, then re-reads it
 *    and moves it again to the newest complete version if a concurrent publisher's swap interleaved;
 * 4. deletes versions beyond `retain` unless a pinned store renewed a lease on them or the alias left them less than
 *    `pinGraceMs` ago.
 */
export async function publishQdrantIndex(
  connection: QdrantConnection,
  base: string,
  input: IndexBuildInput,
  options: PublishQdrantOptions = {},
): Promise<IndexInfo> {
  assertBaseName(base);
  validateBuildInput(input);
  const settings = { ...DEFAULT_QDRANT_PUBLISH, ...definedOnly(options) };
  checkPositiveInt('batchSize', settings.batchSize);
  checkPositiveInt('batchBytes', settings.batchBytes, 64 * 1024);
  checkPositiveInt('retain', settings.retain);
  checkPositiveInt('pinGraceMs', settings.pinGraceMs, 0);
  checkPositiveInt('staleBuildMs', settings.staleBuildMs, 2 * HEARTBEAT_MS);
  checkPositiveInt('indexingThresholdKb', settings.indexingThresholdKb);
  const { ids, vectors, dim, metric, payload } = input;
  let space: QuerySpace | undefined;
  if (options.querySample !== undefined) {
    if (metric === 'l2')
      throw new VectorIndexArgumentError(
        'querySample',
        'the query-aware space serves ip and cos indexes (an l2 ranking is not an inner product)',
      );
    if (dim > QDRANT_QUERY_SPACE_MAX_DIM)
      throw new VectorIndexArgumentError(
        'querySample',
        `the query transform is kept in collection metadata: dim ${dim} > ${QDRANT_QUERY_SPACE_MAX_DIM}`,
      );
    space = fitQuerySpace(options.querySample, dim);
  }

  const rest = new QdrantRest(connection);
  try {
    await rest.checkServer();
    const name = qdrantCollectionName(base, input.version);
    const publishId = randomBytes(8).toString('hex');
    await claimVersion(rest, base, name, input.version, settings.staleBuildMs);

    const graphRows = space === undefined ? undefined : graphItems(space, vectors, metric === 'cos');
    const metadata: QdrantVersionMetadata = {
      base,
      version: input.version,
      model_version: input.modelVersion,
      metric,
      dim,
      count: ids.length,
      layout: QDRANT_LAYOUT,
      state: 'building',
      publish_id: publishId,
      heartbeat_ms: Date.now(),
      ...(space !== undefined
        ? { query_space: { ridge: space.ridge, queries: space.queries, transform: encodeTransform(space.queryTransform) } }
        : {}),
    };
    const hnsw = options.hnsw
      ? {
          ...(options.hnsw.m !== undefined ? { m: options.hnsw.m } : {}),
          ...(options.hnsw.efConstruct !== undefined ? { ef_construct: options.hnsw.efConstruct } : {}),
        }
      : undefined;
    const vectorsConfig =
      space === undefined
        ? { [QDRANT_VECTORS.raw]: { size: dim, distance: DISTANCE[metric] } }
        : {
            // The raw vectors only re-score the graph's candidates: no second graph (m 0).
            [QDRANT_VECTORS.raw]: { size: dim, distance: DISTANCE[metric], hnsw_config: { m: 0 } },
            [QDRANT_VECTORS.graph]: { size: dim + 1, distance: 'Euclid' },
          };
    await createCollection(rest, name, publishId, {
      vectors: vectorsConfig,
      ...(hnsw ? { hnsw_config: hnsw } : {}),
      optimizers_config: { indexing_threshold: 0 },
      metadata,
    });

    try {
      let lastBeat = Date.now();
      const heartbeat = async (force = false) => {
        if (!force && Date.now() - lastBeat < HEARTBEAT_MS) return;
        lastBeat = Date.now();
        await patchMetadata(rest, name, { heartbeat_ms: lastBeat });
      };
      for (const field of [
        { field_name: QDRANT_PAYLOAD.category, field_schema: 'keyword' },
        { field_name: QDRANT_PAYLOAD.createdAtMs, field_schema: 'integer' },
        { field_name: QDRANT_PAYLOAD.itemId, field_schema: 'keyword' },
      ])
        await rest.call('PUT', collectionPath(name, '/index?wait=true'), field, { timeout: 'write', retry: true });

      const pointJson = (i: number): string => {
        const item = payload?.[i];
        const vectorPart =
          graphRows === undefined
            ? `{"${QDRANT_VECTORS.raw}":${vectorJson(vectors, i * dim, (i + 1) * dim)}}`
            : `{"${QDRANT_VECTORS.raw}":${vectorJson(vectors, i * dim, (i + 1) * dim)},"${QDRANT_VECTORS.graph}":${vectorJson(graphRows, i * (dim + 1), (i + 1) * (dim + 1))}}`;
        const pointPayload = {
          [QDRANT_PAYLOAD.itemId]: ids[i],
          ...(item?.category !== undefined ? { [QDRANT_PAYLOAD.category]: item.category } : {}),
          ...(item?.createdAtMs !== undefined ? { [QDRANT_PAYLOAD.createdAtMs]: item.createdAtMs } : {}),
        };
        return `{"id":"${qdrantPointId(ids[i])}","vector":${vectorPart},"payload":${JSON.stringify(pointPayload)}}`;
      };
      const envelope = '{"points":[]}'.length;
      let batch: string[] = [];
      let bytes = envelope;
      let done = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        await rest.call('PUT', collectionPath(name, '/points?wait=true'), undefined, {
          timeout: 'upsert',
          retry: true,
          rawBody: `{"points":[${batch.join(',')}]}`,
        });
        done += batch.length;
        batch = [];
        bytes = envelope;
        options.onProgress?.(done, ids.length);
        await heartbeat();
      };
      for (let i = 0; i < ids.length; i++) {
        const point = pointJson(i);
        const size = Buffer.byteLength(point) + 1;
        if (size + envelope > settings.batchBytes)
          throw new VectorIndexArgumentError(
            'batchBytes',
            `item "${ids[i]}" alone needs ${size} bytes of JSON, over ${settings.batchBytes}`,
          );
        if (batch.length >= settings.batchSize || bytes + size > settings.batchBytes) await flush();
        batch.push(point);
        bytes += size;
      }
      await flush();

      const { count } = await rest.call<{ count: number }>(
        'POST',
        collectionPath(name, '/points/count'),
        { exact: true },
        { timeout: 'read', retry: true },
      );
      if (count !== ids.length) throw new Error(`${name}: holds ${count} points after upserting ${ids.length} items`);

      await rest.call(
        'PATCH',
        collectionPath(name),
        { optimizers_config: { indexing_threshold: settings.indexingThresholdKb } },
        { timeout: 'write', retry: true },
      );
      const bytesPerVector = 4 * (graphRows === undefined ? dim : dim + 1);
      const deadline = Date.now() + rest.timeouts.indexing;
      for (let wait = 200; ; wait = Math.min(5_000, wait * 1.5)) {
        const info = await rest.get<CollectionInfo>(collectionPath(name));
        if (typeof info.optimizer_status === 'object')
          throw new Error(`${name}: Qdrant's optimizer failed: ${info.optimizer_status.error}`);
        if (info.status === 'red') throw new Error(`${name}: Qdrant reports the collection red (an operation failed)`);
        if ((info.points_count ?? 0) !== ids.length) throw new Error(`${name}: holds ${info.points_count} points, expected ${ids.length}`);
        if (indexed(info, settings.indexingThresholdKb, bytesPerVector)) break;
        // Grey: optimisations are pending but not triggered; an empty optimizer update triggers them.
        if (info.status === 'grey')
          await rest.call('PATCH', collectionPath(name), { optimizers_config: {} }, { timeout: 'write', retry: true });
        if (Date.now() + wait > deadline)
          throw new Error(
            `${name}: not indexed within ${rest.timeouts.indexing} ms (timeouts.indexing): status ${info.status}, ` +
              `${info.indexed_vectors_count ?? 0} of ${info.points_count ?? 0} vectors indexed`,
          );
        await sleep(wait);
        await heartbeat();
      }
      await patchMetadata(rest, name, { state: 'complete', completed_at_ms: Date.now(), heartbeat_ms: Date.now() });
    } catch (error) {
      await dropQuietly(rest, name);
      throw error;
    }

    await swapAlias(rest, base, name, input.version);
    const onWarning = options.onWarning ?? ((message: string) => process.emitWarning(message, 'QdrantRetentionWarning'));
    await deleteOldVersions(rest, base, { ...settings, onWarning });
    return { version: input.version, backend: 'qdrant', size: ids.length, dimension: dim, metric, modelVersion: input.modelVersion };
  } finally {
    rest.close();
  }
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function patchMetadata(rest: QdrantRest, name: string, metadata: Record<string, unknown>): Promise<void> {
  await rest.call('PATCH', collectionPath(name), { metadata }, { timeout: 'write', retry: true });
}

async function dropQuietly(rest: QdrantRest, name: string): Promise<void> {
  try {
    await rest.call('DELETE', collectionPath(name), undefined, { timeout: 'delete', retry: true });
  } catch {
    // Left with state 'building': never listed or opened, and dropped by a later publish once its heartbeat is stale.
  }
}

/** Checks that `version` may be built now (see publishQdrantIndex, step 1); drops an abandoned build of it. */
async function claimVersion(rest: QdrantRest, base: string, name: string, version: string, staleBuildMs: number): Promise<void> {
  const versions = await ownedVersions(rest, base);
  const latest = versions.filter((v) => v.meta.state === 'complete').at(-1);
  if (latest !== undefined && compareVersions(version, latest.version) <= 0)
    throw new VectorIndexArgumentError(
      'version',
      `"${version}" does not sort after the latest complete version "${latest.version}" of ${base}`,
    );
  const existing = await describeCollection(rest, name);
  if (existing === undefined) return;
  const meta = ownedMetadata(existing, base, name);
  if (meta === undefined)
    throw new VectorIndexArgumentError(
      'version',
      `collection ${name} exists but was not published for ${base} by this adapter: not touching it`,
    );
  // A complete one would have sorted last above; so this is a build, live or abandoned.
  const silentMs = Date.now() - meta.heartbeat_ms;
  if (silentMs < staleBuildMs)
    throw new QdrantPublishConflictError(`${name} is being built by another publisher (heartbeat ${Math.round(silentMs / 1000)} s ago)`);
  await rest.call('DELETE', collectionPath(name), undefined, { timeout: 'delete', retry: true });
}

/** PUT /collections/{name}: after a timeout the collection may exist — ours if it carries our publish id. */
async function createCollection(rest: QdrantRest, name: string, publishId: string, body: object): Promise<void> {
  try {
    await rest.call('PUT', collectionPath(name), body, { timeout: 'write', retry: false });
  } catch (error) {
    const existing = await describeCollection(rest, name).catch(() => undefined);
    if ((existing?.config.metadata as Partial<QdrantVersionMetadata> | null | undefined)?.publish_id === publishId) return;
    if (existing !== undefined) throw new QdrantPublishConflictError(`${name} was created by another publisher meanwhile`);
    throw error;
  }
}

async function setAlias(rest: QdrantRest, base: string, name: string): Promise<void> {
  await rest.call(
    'POST',
    '/collections/aliases',
    { actions: [{ delete_alias: { alias_name: base } }, { create_alias: { collection_name: name, alias_name: base } }] },
    { timeout: 'write', retry: true },
  );
}

/**
 * Moves the alias to `name` unless it serves a newer version already, then makes sure it ends on the newest complete
 * version: two publishers that read the alias before either swapped would otherwise leave whichever swapped last.
 * Each publisher marks its version complete before swapping and re-reads after, so the last one to swap sees every
 * complete version. A version the alias left gets `superseded_at_ms` (retention's grace runs from it).
 */
async function swapAlias(rest: QdrantRest, base: string, name: string, version: string): Promise<void> {
  const before = await aliasTarget(rest, base);
  try {
    if (before !== undefined && before !== name) {
      const info = await describeCollection(rest, before);
      const meta = info && ownedMetadata(info, base, before);
      if (meta && meta.state === 'complete' && compareVersions(meta.version, version) > 0)
        throw new QdrantPublishConflictError(`alias ${base} already serves version ${meta.version}, newer than ${version}`);
    }
    await setAlias(rest, base, name);
  } catch (error) {
    // All or nothing: unless the alias does point at the new version (a timed-out call may have been applied), the
    // version is removed again.
    const now = await aliasTarget(rest, base).catch(() => undefined);
    if (now !== name) {
      await dropQuietly(rest, name);
      throw error;
    }
  }
  for (let round = 0; round < 5; round++) {
    const newest = (await ownedVersions(rest, base)).filter((v) => v.meta.state === 'complete').at(-1);
    const now = await aliasTarget(rest, base);
    if (newest === undefined || now === newest.name) break;
    await setAlias(rest, base, newest.name);
  }
  const after = await aliasTarget(rest, base);
  if (before !== undefined && before !== after) await patchMetadata(rest, before, { superseded_at_ms: Date.now() }).catch(() => undefined);
}

/** Latest lease renewal of any pinned store on the version (0 when none). */
function lastPinMs(meta: QdrantVersionMetadata): number {
  let last = 0;
  for (const [key, value] of Object.entries(meta))
    if (key.startsWith(PIN_PREFIX) && typeof value === 'number') last = Math.max(last, value);
  return last;
}

/** Retention (publishQdrantIndex, step 4), plus abandoned builds. */
async function deleteOldVersions(
  rest: QdrantRest,
  base: string,
  settings: { retain: number; pinGraceMs: number; staleBuildMs: number; onWarning: (message: string) => void },
): Promise<void> {
  const versions = await ownedVersions(rest, base);
  const serving = await aliasTarget(rest, base);
  const complete = versions.filter((v) => v.meta.state === 'complete');
  const keep = new Set([...(serving !== undefined ? [serving] : []), ...complete.slice(-settings.retain).map((v) => v.name)]);
  const now = Date.now();
  for (const v of versions) {
    if (keep.has(v.name)) continue;
    if (v.meta.state !== 'complete') {
      if (now - v.meta.heartbeat_ms >= settings.staleBuildMs) await dropQuietly(rest, v.name);
      continue;
    }
    // Without a recorded time the alias left it no earlier than the next version was complete.
    const next = complete[complete.indexOf(v) + 1];
    const supersededAt = v.meta.superseded_at_ms ?? next?.meta.completed_at_ms ?? now;
    if (now - supersededAt < settings.pinGraceMs || now - lastPinMs(v.meta) < settings.pinGraceMs) continue;
    try {
      await rest.call('DELETE', collectionPath(v.name), undefined, { timeout: 'delete', retry: true });
    } catch (error) {
      // The new version serves already; an old one left behind is retried by the next publish.
      settings.onWarning(`retention could not delete ${v.name}: ${(error as Error).message}`);
    }
  }
}

/**
 * Query-aware collections: graph candidates re-scored per result wanted. Kept at 2 (the embedded index's default
 * went to 1 on measurements of usearch alone; Qdrant's prefetch was not measured again).
 */
export const QDRANT_EXPANSION_PER_RESULT = 2;

export interface OpenQdrantOptions {
  /** Beam width of graph searches (default: Qdrant's, the collection's ef_construct); raised to the candidates asked for. */
  hnswEf?: number;
  /** Query-aware collections: graph candidates re-scored per result wanted (default QDRANT_EXPANSION_PER_RESULT). */
  expansionPerResult?: number;
  /** How often info() re-reads which version the alias serves (default 10 s; 0 disables; never for a pinned version). */
  refreshIntervalMs?: number;
  /**
   * Pins one version: the store queries `<base>_v<version>` itself instead of the alias, so it answers from exactly
   * that version (e.g. the one whose user tower is loaded) until it is closed, whatever the alias points at.
   */
  version?: string;
  /**
   * A pinned store renews a lease on its version this often (default 60 s; 0: none), so that retention keeps the
   * version while the store is open; publishers honour leases younger than their `pinGraceMs` (default 10 min).
   */
  leaseRenewMs?: number;
  /** A lease renewal failed (e.g. a read-only API key): the version is then kept only by the grace after it stopped serving. */
  onLeaseError?: (error: unknown) => void;
}

/**
 * Opens the serving version through the alias `base`, or the pinned `version`; fails clearly when the server is too
 * old, or the alias or a complete version's collection does not exist.
 */
export async function openQdrantStore(connection: QdrantConnection, base: string, options: OpenQdrantOptions = {}): Promise<QdrantStore> {
  assertBaseName(base);
  if (options.version !== undefined) assertVersionName(options.version);
  const { refreshIntervalMs = 10_000, leaseRenewMs = 60_000, hnswEf, expansionPerResult = QDRANT_EXPANSION_PER_RESULT } = options;
  checkPositiveInt('refreshIntervalMs', refreshIntervalMs, 0);
  checkPositiveInt('leaseRenewMs', leaseRenewMs, 0);
  if (hnswEf !== undefined) checkPositiveInt('hnswEf', hnswEf);
  if (!(expansionPerResult >= 1)) throw new VectorIndexArgumentError('expansionPerResult', `${expansionPerResult} is not a number >= 1`);
  const rest = new QdrantRest(connection);
  const store = new QdrantStore(rest, base, options);
  try {
    await rest.checkServer();
    await store.reload();
  } catch (error) {
    rest.close();
    throw error;
  }
  if (options.version === undefined) {
    if (refreshIntervalMs > 0) store.startRefresh(refreshIntervalMs);
  } else if (leaseRenewMs > 0) store.startLease(leaseRenewMs);
  return store;
}

/** What a store knows of the collection it serves. */
interface Serving {
  info: IndexInfo;
  collection: string;
  /** A⁻¹ of the query-aware space, when the collection has a graph vector. */
  queryTransform?: Float32Array;
}

/** Above this many excluded ids a batch does not repeat them in every search (see searchBatch). */
export const QDRANT_BATCH_INLINE_EXCLUSIONS = 64;

/**
 * A VectorStore over the Qdrant alias `base`: every request names the alias, so an alias swap takes effect between
 * two requests and none fails. info() is the serving version as last read (on open, on reload(), every refresh).
 * With `version`, every request names that version's collection instead (and a lease keeps it from retention).
 */
export class QdrantStore implements VectorStore {
  private current: Serving | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** The lease renewal on the wire, if any: close() waits for it, so that it cannot land after the pin's removal. */
  private renewal: Promise<void> | undefined;
  private closed = false;
  /** The collection or alias every request names. */
  readonly target: string;
  /** This store's lease key in the pinned collection's metadata. */
  readonly pinKey = `${PIN_PREFIX}${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;

  constructor(
    private readonly rest: QdrantRest,
    readonly alias: string,
    private readonly options: OpenQdrantOptions = {},
  ) {
    this.target = options.version === undefined ? alias : qdrantCollectionName(alias, options.version);
  }

  info(): IndexInfo {
    if (this.current === undefined) throw new Error(`Qdrant ${this.describeTarget()} has not been read yet: call reload()`);
    return { ...this.current.info };
  }

  private describeTarget(): string {
    return this.options.version === undefined ? `alias ${this.alias}` : `collection ${this.target}`;
  }

  /** Re-reads the alias (unless pinned) and the serving collection's metadata; refuses an unfinished collection. */
  async reload(): Promise<IndexInfo> {
    this.assertOpen();
    const pinned = this.options.version;
    let collection: string | undefined;
    if (pinned === undefined) {
      collection = await aliasTarget(this.rest, this.alias);
      if (collection === undefined) throw new Error(`Qdrant alias ${this.alias} does not exist: publish a version first`);
    } else {
      collection = this.target;
    }
    const described = await describeCollection(this.rest, collection);
    if (described === undefined)
      throw new Error(
        pinned === undefined
          ? `Qdrant alias ${this.alias} points at ${collection}, which does not exist`
          : `Qdrant collection ${collection} (version ${pinned} of ${this.alias}) does not exist`,
      );
    const raw = (described.config.metadata ?? {}) as Partial<QdrantVersionMetadata>;
    const metadata = ownedMetadata(described, raw.base ?? this.alias, collection);
    if (metadata === undefined || metadata.base !== this.alias)
      throw new Error(
        `Qdrant collection ${collection} lacks the metadata publishQdrantIndex (layout ${QDRANT_LAYOUT}) writes for ${this.alias}` +
          (raw.base !== undefined && raw.base !== this.alias ? ` (it belongs to ${String(raw.base)})` : ''),
      );
    if (pinned !== undefined && metadata.version !== pinned)
      throw new Error(`Qdrant collection ${collection} holds version ${metadata.version} of ${metadata.base}, not version ${pinned}`);
    if (metadata.state !== 'complete')
      throw new Error(`Qdrant collection ${collection} (version ${metadata.version}) is not complete: its publish is unfinished or failed`);
    if ((described.points_count ?? 0) !== metadata.count)
      throw new Error(
        `Qdrant collection ${collection} holds ${described.points_count ?? 0} points, its metadata records ${metadata.count}`,
      );
    this.current = {
      collection,
      info: {
        version: metadata.version,
        backend: 'qdrant',
        size: metadata.count,
        dimension: metadata.dim,
        metric: metadata.metric,
        modelVersion: metadata.model_version ?? '',
      },
      ...(metadata.query_space !== undefined
        ? { queryTransform: decodeTransform(metadata.query_space.transform, metadata.dim, collection) }
        : {}),
    };
    return this.info();
  }

  startRefresh(intervalMs: number): void {
    this.stopTimers();
    // A failed refresh keeps the last info; the next request or refresh reports the problem.
    this.timer = setInterval(() => this.reload().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  /** Renews this store's lease on its pinned version now and every `intervalMs`. */
  startLease(intervalMs: number): void {
    const renew = () => {
      if (this.closed || this.renewal !== undefined) return;
      this.renewal = patchMetadata(this.rest, this.target, { [this.pinKey]: Date.now() })
        .catch((error: unknown) => {
          if (this.closed) return;
          if (this.options.onLeaseError) this.options.onLeaseError(error);
          else process.emitWarning(`Qdrant lease on ${this.target} not renewed: ${(error as Error).message}`, 'QdrantLeaseWarning');
        })
        .finally(() => {
          this.renewal = undefined;
        });
    };
    renew();
    this.leaseTimer = setInterval(renew, intervalMs);
    this.leaseTimer.unref();
  }

  private stopTimers(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    this.timer = undefined;
    this.leaseTimer = undefined;
  }

  async search(vector: Float32Array, k: number, options: SearchOptions = {}): Promise<Neighbour[]> {
    this.assertOpen();
    this.checkQuery(vector, 'vector');
    this.checkK(k);
    const filter = qdrantFilter(options);
    const response = await this.rest.call<{ points: QdrantPoint[] }>(
      'POST',
      collectionPath(this.target, '/points/query'),
      this.queryRequest(vector, k, filter),
      {
        timeout: 'search',
      },
    );
    return this.neighbours(response.points);
  }

  /**
   * One query/batch request for every vector. Qdrant has no filter shared by a batch's searches, so a long exclusion
   * list (over QDRANT_BATCH_INLINE_EXCLUSIONS ids) is not repeated in each: every search asks for k plus a margin
   * without it, excluded ids are dropped here, and only the searches left short are asked again with the list.
   */
  async searchBatch(vectors: readonly Float32Array[], k: number, options: SearchOptions = {}): Promise<Neighbour[][]> {
    this.assertOpen();
    if (!Array.isArray(vectors)) throw new VectorIndexArgumentError('vectors', 'an array of Float32Array vectors is required');
    vectors.forEach((vector, i) => this.checkQuery(vector, `vectors[${i}]`));
    this.checkK(k);
    if (vectors.length === 0) return [];
    const excluded = options.excludeIds;
    if (excluded !== undefined && !(excluded instanceof Set))
      throw new VectorIndexArgumentError('excludeIds', 'a Set of item ids is required');
    if (vectors.length === 1 || excluded === undefined || excluded.size <= QDRANT_BATCH_INLINE_EXCLUSIONS) {
      const filter = qdrantFilter(options);
      return (await this.batch(vectors.map((v) => this.queryRequest(v, k, filter)))).map((points) => this.neighbours(points));
    }
    const margin = Math.min(excluded.size, Math.max(16, Math.ceil(k / 4)));
    const categoryOnly = qdrantFilter({ ...options, excludeIds: undefined });
    const first = await this.batch(vectors.map((v) => this.queryRequest(v, k + margin, categoryOnly)));
    const out: Neighbour[][] = [];
    const short: number[] = [];
    first.forEach((points, i) => {
      const kept = this.neighbours(points).filter((n) => !excluded.has(n.id));
      // Fewer than asked for came back: nothing else qualifies, so the list is complete even when shorter than k.
      if (kept.length < k && points.length === k + margin) short.push(i);
      out.push(kept.slice(0, k));
    });
    if (short.length > 0) {
      const filter = qdrantFilter(options);
      const again = await this.batch(short.map((i) => this.queryRequest(vectors[i]!, k, filter)));
      short.forEach((i, j) => (out[i] = this.neighbours(again[j]!)));
    }
    return out;
  }

  private async batch(searches: object[]): Promise<QdrantPoint[][]> {
    const responses = await this.rest.call<{ points: QdrantPoint[] }[]>(
      'POST',
      collectionPath(this.target, '/points/query/batch'),
      { searches },
      {
        timeout: 'search',
      },
    );
    return responses.map((r) => r.points);
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

  /**
   * A query: on the raw vector directly, or — query-aware collections — graph candidates (expansionPerResult per
   * result wanted, at least hnswEf) re-scored by the raw vector, so scores are exact as the embedded index's.
   */
  queryRequest(vector: Float32Array, k: number, filter: QdrantFilter | undefined): object {
    const serving = this.current!;
    const { hnswEf, expansionPerResult = QDRANT_EXPANSION_PER_RESULT } = this.options;
    const withPayload = [QDRANT_PAYLOAD.itemId, QDRANT_PAYLOAD.category, QDRANT_PAYLOAD.createdAtMs];
    const query = Array.from(vector);
    if (serving.queryTransform === undefined)
      return {
        query,
        using: QDRANT_VECTORS.raw,
        limit: k,
        ...(filter ? { filter } : {}),
        with_payload: withPayload,
        ...(hnswEf !== undefined ? { params: { hnsw_ef: Math.max(hnswEf, k) } } : {}),
      };
    const candidates = Math.min(serving.info.size, Math.max(k, Math.ceil(k * expansionPerResult)));
    const graph = graphQuery({ dim: serving.info.dimension, queryTransform: serving.queryTransform }, vector);
    return {
      prefetch: {
        query: Array.from(graph),
        using: QDRANT_VECTORS.graph,
        limit: candidates,
        ...(filter ? { filter } : {}),
        params: { hnsw_ef: Math.max(hnswEf ?? 0, candidates) },
      },
      query,
      using: QDRANT_VECTORS.raw,
      limit: k,
      with_payload: withPayload,
    };
  }

  private neighbours(points: QdrantPoint[]): Neighbour[] {
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

  private retrieve(ids: readonly string[], withVector: boolean, payloadKeys: string[]): Promise<QdrantRecord[]> {
    return this.rest.call<QdrantRecord[]>(
      'POST',
      collectionPath(this.target, '/points'),
      { ids: [...new Set(ids)].map(qdrantPointId), with_vector: withVector ? [QDRANT_VECTORS.raw] : false, with_payload: payloadKeys },
      { timeout: 'search' },
    );
  }

  async payloads(ids: readonly string[]): Promise<(ItemPayload | undefined)[]> {
    this.assertOpen();
    if (!Array.isArray(ids)) throw new VectorIndexArgumentError('ids', 'an array of item ids is required');
    if (ids.length === 0) return [];
    const records = await this.retrieve(ids, false, [QDRANT_PAYLOAD.itemId, QDRANT_PAYLOAD.category, QDRANT_PAYLOAD.createdAtMs]);
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
    const records = await this.retrieve(ids, true, [QDRANT_PAYLOAD.itemId]);
    const byId = new Map<string, Float32Array>();
    for (const record of records) {
      const itemId = record.payload?.[QDRANT_PAYLOAD.itemId];
      const raw = record.vector?.[QDRANT_VECTORS.raw];
      if (typeof itemId === 'string' && Array.isArray(raw)) byId.set(itemId, Float32Array.from(raw));
    }
    // Separate copies so that a caller modifying one entry does not change a duplicate.
    return ids.map((id) => {
      const vector = byId.get(id);
      return vector === undefined ? undefined : vector.slice();
    });
  }

  /** Stops refreshing, gives up the lease (best effort) and releases the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    const leased = this.leaseTimer !== undefined;
    this.stopTimers();
    // A renewal still on the wire would otherwise write the pin back after its removal.
    if (this.renewal !== undefined) await this.renewal;
    if (leased) await patchMetadata(this.rest, this.target, { [this.pinKey]: null }).catch(() => undefined);
    this.closed = true;
    this.rest.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(`Qdrant store ${this.target}`);
  }
}

interface QdrantPoint {
  score: number;
  payload?: Record<string, unknown> | null;
}

interface QdrantRecord {
  payload?: Record<string, unknown> | null;
  vector?: Record<string, number[]> | null;
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

export interface QdrantFilter {
  must?: object[];
  must_not?: object[];
}

/** The Qdrant filter for SearchOptions: excluded ids by point id, categories by the indexed keyword payload. */
export function qdrantFilter(options: SearchOptions): QdrantFilter | undefined {
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
