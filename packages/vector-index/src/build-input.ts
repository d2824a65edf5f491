import { VectorIndexArgumentError } from './errors.js';
import { assertVersionName } from './versions.js';
import { METRICS, type IndexBuildInput } from './vector-store.js';

/** Throws a VectorIndexArgumentError naming the first invalid field of a build input. */
export function validateBuildInput(input: IndexBuildInput): void {
  const { ids, vectors, dim, metric, payload, modelVersion } = input;
  assertVersionName(input.version);
  if (typeof modelVersion !== 'string' || modelVersion.length === 0)
    throw new VectorIndexArgumentError('modelVersion', 'a non-empty string is required');
  if (!METRICS.includes(metric)) throw new VectorIndexArgumentError('metric', `"${String(metric)}" is not one of ${METRICS.join(', ')}`);
  if (!Number.isInteger(dim) || dim <= 0 || dim > 4096) throw new VectorIndexArgumentError('dim', `${dim} is not an integer in 1..4096`);
  if (!Array.isArray(ids) || ids.length === 0) throw new VectorIndexArgumentError('ids', 'at least one item is required');
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'string' || id.length === 0) throw new VectorIndexArgumentError(`ids[${i}]`, 'item ids are non-empty strings');
    if (seen.has(id)) throw new VectorIndexArgumentError(`ids[${i}]`, `"${id}" appears twice`);
    seen.add(id);
  }
  if (!(vectors instanceof Float32Array)) throw new VectorIndexArgumentError('vectors', 'a Float32Array is required');
  if (vectors.length !== ids.length * dim)
    throw new VectorIndexArgumentError('vectors', `expected ${ids.length} × ${dim} = ${ids.length * dim} values, got ${vectors.length}`);
  for (let i = 0; i < vectors.length; i++) {
    if (!Number.isFinite(vectors[i])) {
      const row = Math.floor(i / dim);
      throw new VectorIndexArgumentError('vectors', `item "${ids[row]}" (row ${row}) has a non-finite value at position ${i % dim}`);
    }
  }
  if (payload === undefined) return;
  if (!Array.isArray(payload) || payload.length !== ids.length)
    throw new VectorIndexArgumentError(
      'payload',
      `expected one entry per id (${ids.length}), got ${Array.isArray(payload) ? payload.length : typeof payload}`,
    );
  for (let i = 0; i < payload.length; i++) {
    const entry = payload[i];
    if (entry === null || typeof entry !== 'object') throw new VectorIndexArgumentError(`payload[${i}]`, 'an object is required');
    const { category, createdAtMs } = entry;
    if (category !== undefined && (typeof category !== 'string' || category.length === 0))
      throw new VectorIndexArgumentError(`payload[${i}].category`, 'a non-empty string or undefined is required');
    if (createdAtMs !== undefined && !Number.isSafeInteger(createdAtMs))
      throw new VectorIndexArgumentError(`payload[${i}].createdAtMs`, `${createdAtMs} is not an integer number of milliseconds`);
  }
}
