// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { imul, sqrt, log, cos, PI } = Math;

/** A seeded PRNG (mulberry32): the same vectors on every run and platform. */
function seededUniform(seed: number): () => number {
  let state = imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ClusteredVectorsOptions {
  count: number;
  dim: number;
  /** Number of cluster centres (default 64). */
  clusters?: number;
  /** Standard deviation of a vector around its centre, per coordinate, relative to the centre's unit length (default 0.35). */
  spread?: number;
  /** Seeds the cluster centres: queries drawn with the items' centreSeed and another seed come from the same clusters. */
  centreSeed?: number;
  /** Seeds the vectors around the centres. */
  seed?: number;
}

/**
 * L2-normalised vectors scattered around random unit centres, like two-tower item embeddings (items of a genre
 * cluster together); row-major count × dim. The same seed gives the same vectors.
 */
export function clusteredUnitVectors(options: ClusteredVectorsOptions): Float32Array {
  const { count, dim, clusters = 64, spread = 0.35, centreSeed = 1, seed = 1 } = options;
  const centreUniform = seededUniform(centreSeed);
  const centres = new Float64Array(clusters * dim);
  for (let c = 0; c < clusters; c++) normaliseInPlace(centres, c * dim, dim, () => gaussian(centreUniform));
  const uniform = seededUniform(seed ^ 0x5bd1e995);
  const normal = (): number => gaussian(uniform);
  const out = new Float32Array(count * dim);
  const perCoordinate = spread / sqrt(dim);
  for (let i = 0; i < count; i++) {
    const centre = Math.floor(uniform() * clusters) * dim;
    const row = new Float64Array(dim);
    for (let j = 0; j < dim; j++) row[j] = centres[centre + j] + perCoordinate * normal();
    normaliseInPlace(row, 0, dim, (j) => row[j]);
    out.set(row, i * dim);
  }
  return out;
}

/** Box–Muller; one value per call keeps the stream simple. */
function gaussian(uniform: () => number): number {
  return sqrt(-2 * log(1 - uniform())) * cos(2 * PI * uniform());
}

function normaliseInPlace(target: Float64Array, offset: number, dim: number, value: (j: number) => number): void {
  let sum = 0;
  for (let j = 0; j < dim; j++) {
    const v = value(j);
    target[offset + j] = v;
    sum += v * v;
  }
  const scale = sum === 0 ? 0 : 1 / sqrt(sum);
  for (let j = 0; j < dim; j++) target[offset + j] *= scale;
}
