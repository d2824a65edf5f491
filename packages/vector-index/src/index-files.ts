import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { IndexFileError } from './errors.js';
import { META_FILE } from './versions.js';
import { METRICS, type Metric } from './vector-store.js';

/** Bumped when the directory layout changes; readers refuse formats they do not know. */
export const HNSW_INDEX_FORMAT = 'recsys-vector-index/hnsw/1';

/** The files of an embedded index version, besides meta.json. Binary files are little-endian, row-major. */
export const INDEX_FILES = {
  /** The usearch HNSW graph (it also holds its own copy of the vectors). */
  graph: 'index.usearch',
  /** count × dim float32: getVectors and exact re-scoring. */
  vectors: 'vectors.f32',
  /** JSON array of item ids; row i is the usearch key i. */
  ids: 'ids.json',
  /** int32 per row: index into meta.categories, −1 when the item has none. */
  category: 'category.i32',
  /** float64 per row: creation time in ms since the epoch, NaN when unknown. */
  createdAtMs: 'created-at-ms.f64',
} as const;

/** A⁻¹ of the query-aware space (dim × dim float32), present when the index was built with a query sample. */
export const QUERY_TRANSFORM_FILE = 'query-transform.f32';

/**
 * How the graph stores its copy of the vectors (usearch scalar kinds): f32, or f16 at half the bytes. Candidates are
 * re-scored from vectors.f32 either way, so only which items the beam finds can change. bf16 and i8 are not offered:
 * on a query-aware graph they lost recall (see the README).
 */
export const GRAPH_QUANTIZATIONS = ['f32', 'f16'] as const;
export type GraphQuantization = (typeof GRAPH_QUANTIZATIONS)[number];

/** The graph of a version whose meta.json records no quantization: written before the option existed, f32. */
const UNRECORDED_QUANTIZATION: GraphQuantization = 'f32';

export interface HnswParams {
  /** Graph degree M (usearch `connectivity`); the base layer keeps 2M. */
  connectivity: number;
  /** Beam width while inserting (efConstruction). */
  expansionAdd: number;
  /** Beam width while searching (ef); usearch widens it to k when k is larger. */
  expansionSearch: number;
  /** The graph's vector scalar kind (absent in meta.json of indexes written before it existed: f32). */
  quantization: GraphQuantization;
}

export interface FileDigest {
  bytes: number;
  sha256: string;
}

export interface HnswIndexMeta {
  format: typeof HNSW_INDEX_FORMAT;
  version: string;
  modelVersion: string;
  metric: Metric;
  dim: number;
  count: number;
  createdAt: string;
  hnsw: HnswParams;
  /** Category dictionary for category.i32. */
  categories: string[];
  /**
   * Present when the graph lives in the query-aware space (query-space.ts): the graph then holds dim + 1 wide rows
   * and searches map the query through query-transform.f32.
   */
  querySpace?: { ridge: number; queries: number };
  files: Record<string, FileDigest>;
}

export type VerifyMode = 'checksum' | 'size';

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('embedded vector indexes are stored little-endian; this platform is big-endian');
}

/** Writes `data`, flushes it to disk and returns its digest. */
export async function writeSyncedFile(path: string, data: Uint8Array): Promise<FileDigest> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') };
}

/** Flushes a file written by someone else (usearch) and returns its digest. */
export async function syncAndDigestFile(path: string): Promise<FileDigest> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes: (await stat(path)).size, sha256: await sha256OfFile(path) };
}

export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export function bytesOf(array: Float32Array | Float64Array | Int32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Reads and checks meta.json of an index directory. */
export async function readMeta(dir: string): Promise<HnswIndexMeta> {
  const path = join(dir, META_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new IndexFileError(path, code === 'ENOENT' ? 'missing: not an index directory, or an incomplete one' : (error as Error).message);
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (error) {
    throw new IndexFileError(path, `not valid JSON (${(error as Error).message})`);
  }
  const problem = metaProblem(meta);
  if (problem !== undefined) throw new IndexFileError(path, problem);
  const checked = meta as HnswIndexMeta;
  checked.hnsw.quantization ??= UNRECORDED_QUANTIZATION;
  return checked;
}

/**
 * What is wrong with a set of HNSW parameters — the field (`hnsw.<name>`) and why — or undefined: the one check of a
 * build's options and of a version's meta.json.
 */
export function hnswParamsProblem(hnsw: Record<string, unknown>): { field: string; reason: string } | undefined {
  for (const key of ['connectivity', 'expansionAdd', 'expansionSearch'] as const)
    if (!Number.isInteger(hnsw[key]) || (hnsw[key] as number) <= 0)
      return { field: `hnsw.${key}`, reason: `${JSON.stringify(hnsw[key])} is not a positive integer` };
  if (!(GRAPH_QUANTIZATIONS as readonly unknown[]).includes(hnsw.quantization))
    return { field: 'hnsw.quantization', reason: `${JSON.stringify(hnsw.quantization)} is not one of ${GRAPH_QUANTIZATIONS.join(', ')}` };
  return undefined;
}

function metaProblem(meta: unknown): string | undefined {
  if (meta === null || typeof meta !== 'object') return 'not a JSON object';
  const m = meta as Record<string, unknown>;
  if (m.format !== HNSW_INDEX_FORMAT) return `unknown format ${JSON.stringify(m.format)} (expected "${HNSW_INDEX_FORMAT}")`;
  for (const key of ['version', 'modelVersion', 'createdAt'] as const) if (typeof m[key] !== 'string') return `"${key}" is not a string`;
  if (!METRICS.includes(m.metric as Metric)) return `"metric" ${JSON.stringify(m.metric)} is not one of ${METRICS.join(', ')}`;
  for (const key of ['dim', 'count'] as const)
    if (!Number.isInteger(m[key]) || (m[key] as number) <= 0) return `"${key}" is not a positive integer`;
  const hnsw = m.hnsw as Record<string, unknown> | undefined;
  if (hnsw === null || typeof hnsw !== 'object') return '"hnsw" is not an object';
  const hnswProblem = hnswParamsProblem({ quantization: UNRECORDED_QUANTIZATION, ...hnsw });
  if (hnswProblem !== undefined) return `"${hnswProblem.field}" ${hnswProblem.reason}`;
  if (!Array.isArray(m.categories) || !m.categories.every((c) => typeof c === 'string')) return '"categories" is not an array of strings';
  const space = m.querySpace as Record<string, unknown> | undefined;
  if (
    space !== undefined &&
    (space === null || typeof space !== 'object' || !(Number(space.ridge) > 0) || !Number.isInteger(space.queries))
  )
    return '"querySpace" needs a positive ridge and a whole number of queries';
  const files = m.files as Record<string, unknown> | undefined;
  if (files === null || typeof files !== 'object') return '"files" is not an object';
  for (const name of [...Object.values(INDEX_FILES), ...(space !== undefined ? [QUERY_TRANSFORM_FILE] : [])]) {
    const digest = files[name] as Record<string, unknown> | undefined;
    if (digest === undefined || digest === null || typeof digest !== 'object') return `"files" lacks ${name}`;
    if (!Number.isInteger(digest.bytes) || typeof digest.sha256 !== 'string') return `"files.${name}" needs bytes and sha256`;
  }
  return undefined;
}

/** The byte length a fixed-width file must have, from the meta alone (catches a meta and data that disagree). */
export function expectedBytes(meta: HnswIndexMeta, name: string): number | undefined {
  if (name === INDEX_FILES.vectors) return meta.count * meta.dim * 4;
  if (name === INDEX_FILES.category) return meta.count * 4;
  if (name === INDEX_FILES.createdAtMs) return meta.count * 8;
  if (name === QUERY_TRANSFORM_FILE) return meta.dim * meta.dim * 4;
  return undefined;
}

function checkSize(path: string, meta: HnswIndexMeta, name: string, actual: number): void {
  const recorded = meta.files[name].bytes;
  if (actual !== recorded)
    throw new IndexFileError(path, `${actual} bytes, but meta.json records ${recorded}: the file is truncated or replaced`);
  const expected = expectedBytes(meta, name);
  if (expected !== undefined && actual !== expected)
    throw new IndexFileError(
      path,
      `${actual} bytes, but ${name === QUERY_TRANSFORM_FILE ? `dimension ${meta.dim}` : `${meta.count} items`} need ${expected}: meta.json and the file disagree`,
    );
}

function checkDigest(path: string, meta: HnswIndexMeta, name: string, sha256: string): void {
  const recorded = meta.files[name].sha256;
  if (sha256 !== recorded)
    throw new IndexFileError(path, `checksum mismatch (sha256 ${sha256}, meta.json records ${recorded}): the file is corrupt`);
}

function missing(path: string, error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  throw new IndexFileError(path, code === 'ENOENT' ? 'missing' : (error as Error).message);
}

/** Reads a whole index file, checking its size and (with 'checksum') its sha256 against meta.json. */
export async function readVerifiedFile(dir: string, meta: HnswIndexMeta, name: string, verify: VerifyMode): Promise<Buffer> {
  const path = join(dir, name);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    missing(path, error);
  }
  checkSize(path, meta, name, data.byteLength);
  if (verify === 'checksum') checkDigest(path, meta, name, createHash('sha256').update(data).digest('hex'));
  return data;
}

/** Checks a file that another reader (usearch) loads itself, without keeping it in memory. */
export async function verifyFileOnDisk(dir: string, meta: HnswIndexMeta, name: string, verify: VerifyMode): Promise<string> {
  const path = join(dir, name);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    missing(path, error);
  }
  checkSize(path, meta, name, size);
  if (verify === 'checksum') checkDigest(path, meta, name, await sha256OfFile(path));
  return path;
}

/** A typed view of a file's bytes, copied only when the buffer is not aligned for the element type. */
export function typedView<T extends Float32Array | Float64Array | Int32Array>(
  data: Buffer,
  Type: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const length = data.byteLength / Type.BYTES_PER_ELEMENT;
  if (data.byteOffset % Type.BYTES_PER_ELEMENT === 0) return new Type(data.buffer, data.byteOffset, length);
  const copy = new Type(length);
  new Uint8Array(copy.buffer).set(data);
  return copy;
}
