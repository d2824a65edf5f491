import { VectorIndexArgumentError } from './errors.js';

// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { abs, max, sqrt } = Math;

/**
 * The space an inner-product graph is built in when the queries' distribution is known (see the README, "Query-aware
 * graph"). With S the queries' second moment and A = (S + εI)^½, item x becomes [A·x, √(R² − |A·x|²)] and query q
 * becomes [A⁻¹·q, 0]: their squared distance is R² + |A⁻¹q|² − 2·q·x, so the L2 ranking is exactly the inner-product
 * one, while two items are near when typical queries score them alike (|A(x − y)|² = E_q[(q·x − q·y)²] + ε|x − y|²).
 */
export interface QuerySpace {
  dim: number;
  /** A⁻¹, dim × dim, row-major (symmetric): maps a query into the graph's space. */
  queryTransform: Float32Array;
  /** A, dim × dim, row-major (symmetric): maps an item. */
  itemTransform: Float32Array;
  /** ε relative to the largest eigenvalue of S. */
  ridge: number;
  /** Queries the moment was estimated from. */
  queries: number;
}

/** ε = RIDGE · λmax(S): keeps A invertible when the queries span fewer than dim directions (users in a few tastes). */
export const QUERY_SPACE_RIDGE = 1e-3;

/** Fits the query-aware space to a sample of query vectors (rows of dim), e.g. user-tower outputs. */
export function fitQuerySpace(sample: Float32Array, dim: number, ridge = QUERY_SPACE_RIDGE): QuerySpace {
  if (!(sample instanceof Float32Array) || sample.length === 0 || sample.length % dim !== 0)
    throw new VectorIndexArgumentError('querySample', `expected a non-empty Float32Array of rows of ${dim} values`);
  for (let i = 0; i < sample.length; i++)
    if (!Number.isFinite(sample[i])) throw new VectorIndexArgumentError('querySample', `row ${Math.floor(i / dim)} has a non-finite value`);
  if (!(ridge > 0)) throw new VectorIndexArgumentError('ridge', `${ridge} is not positive`);
  const count = sample.length / dim;
  const moment = new Float64Array(dim * dim);
  for (let r = 0; r < count; r++) {
    const base = r * dim;
    for (let a = 0; a < dim; a++) {
      const va = sample[base + a];
      for (let b = a; b < dim; b++) moment[a * dim + b] += va * sample[base + b];
    }
  }
  for (let a = 0; a < dim; a++)
    for (let b = a; b < dim; b++) {
      moment[a * dim + b] /= count;
      moment[b * dim + a] = moment[a * dim + b];
    }
  const { values, vectors } = symmetricEigen(moment, dim);
  const largest = max(...values);
  if (!(largest > 0)) throw new VectorIndexArgumentError('querySample', 'every query is zero');
  const epsilon = ridge * largest;
  const power = (p: number): Float32Array => {
    const out = new Float32Array(dim * dim);
    const scale = values.map((v) => (max(v, 0) + epsilon) ** p);
    for (let a = 0; a < dim; a++)
      for (let b = 0; b < dim; b++) {
        let sum = 0;
        for (let k = 0; k < dim; k++) sum += vectors[a * dim + k] * scale[k] * vectors[b * dim + k];
        out[a * dim + b] = sum;
      }
    return out;
  };
  return { dim, queryTransform: power(-0.5), itemTransform: power(0.5), ridge, queries: count };
}

/** out = M·v for a dim × dim row-major M. */
export function transformRow(
  matrix: Float32Array,
  dim: number,
  v: Float32Array,
  vOffset: number,
  out: Float32Array,
  outOffset: number,
): void {
  for (let a = 0; a < dim; a++) {
    let sum = 0;
    const row = a * dim;
    for (let b = 0; b < dim; b++) sum += matrix[row + b] * v[vOffset + b];
    out[outOffset + a] = sum;
  }
}

/**
 * The items as the graph stores them: rows of dim + 1, [A·x, √(R² − |A·x|²)] with R the largest |A·x|. `normalise`
 * (cosine indexes) divides each item by its norm first, as the cosine ranking is the inner product of unit items.
 */
export function graphItems(space: QuerySpace, vectors: Float32Array, normalise: boolean): Float32Array {
  const { dim, itemTransform } = space;
  const count = vectors.length / dim;
  const width = dim + 1;
  const out = new Float32Array(count * width);
  const unit = new Float32Array(dim);
  const norms = new Float64Array(count);
  let largest = 0;
  for (let i = 0; i < count; i++) {
    let source = vectors;
    let offset = i * dim;
    if (normalise) {
      let n = 0;
      for (let j = 0; j < dim; j++) n += vectors[offset + j] * vectors[offset + j];
      const inverse = n > 0 ? 1 / sqrt(n) : 0;
      for (let j = 0; j < dim; j++) unit[j] = vectors[offset + j] * inverse;
      source = unit;
      offset = 0;
    }
    transformRow(itemTransform, dim, source, offset, out, i * width);
    let squared = 0;
    for (let j = 0; j < dim; j++) squared += out[i * width + j] * out[i * width + j];
    norms[i] = squared;
    if (squared > largest) largest = squared;
  }
  for (let i = 0; i < count; i++) out[i * width + dim] = sqrt(max(0, largest - norms[i]));
  return out;
}

/** A query as the graph searches it: [A⁻¹·q, 0]. */
export function graphQuery(
  space: Pick<QuerySpace, 'dim' | 'queryTransform'>,
  query: Float32Array,
  out: Float32Array = new Float32Array(space.dim + 1),
): Float32Array {
  transformRow(space.queryTransform, space.dim, query, 0, out, 0);
  out[space.dim] = 0;
  return out;
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (dim is small: the embedding width). */
export function symmetricEigen(matrix: Float64Array, dim: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) v[i * dim + i] = 1;
  let scale = 0;
  for (let i = 0; i < dim * dim; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < dim; p++) for (let q = p + 1; q < dim; q++) off += a[p * dim + q] * a[p * dim + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < dim; p++)
      for (let q = p + 1; q < dim; q++) {
        const apq = a[p * dim + q];
        if (abs(apq) < 1e-300) continue;
        const theta = (a[q * dim + q] - a[p * dim + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (abs(theta) + sqrt(theta * theta + 1));
        const c = 1 / sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < dim; k++) {
          const akp = a[k * dim + p];
          const akq = a[k * dim + q];
          a[k * dim + p] = c * akp - s * akq;
          a[k * dim + q] = s * akp + c * akq;
        }
        for (let k = 0; k < dim; k++) {
          const apk = a[p * dim + k];
          const aqk = a[q * dim + k];
          a[p * dim + k] = c * apk - s * aqk;
          a[q * dim + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < dim; k++) {
          const vkp = v[k * dim + p];
          const vkq = v[k * dim + q];
          v[k * dim + p] = c * vkp - s * vkq;
          v[k * dim + q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Array.from({ length: dim }, (_, i) => a[i * dim + i]), vectors: v };
}
