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

export interface ModalityGapOptions {
  items: number;
  queries: number;
  dim: number;
  /** Item clusters (categories), default 20. */
  clusters?: number;
  seed?: number;
}

/**
 * Items and queries the way a two-tower's towers place them: every item near one direction (a tight cap, clustered
 * by category), every query on the far side of the sphere and leaning towards a few clusters, so its best items are
 * spread over several clusters and sit far from it — the case a graph over the items alone searches badly.
 */
export function modalityGapVectors(options: ModalityGapOptions): { items: Float32Array; queries: Float32Array } {
  const { dim, clusters = 20, seed = 1 } = options;
  const uniform = seededUniform(seed);
  const normal = (): number => gaussian(uniform);
  const unit = (fill: (row: Float64Array) => void): Float64Array => {
    const row = new Float64Array(dim);
    fill(row);
    normaliseInPlace(row, 0, dim, (j) => row[j]);
    return row;
  };
  const axis = unit((row) => row.forEach((_, j) => (row[j] = normal())));
  const centres = Array.from({ length: clusters }, () => unit((row) => row.forEach((_, j) => (row[j] = normal()))));
  const items = new Float32Array(options.items * dim);
  for (let i = 0; i < options.items; i++) {
    const centre = centres[Math.floor(uniform() * clusters)];
    items.set(
      unit((row) => row.forEach((_, j) => (row[j] = axis[j] + 0.2 * centre[j] + (0.2 / sqrt(dim)) * normal()))),
      i * dim,
    );
  }
  // Users come in a few tastes, each leaning towards three clusters: queries span a few directions only.
  const tastes = Array.from({ length: 4 }, () => {
    const liked = [0, 1, 2].map(() => centres[Math.floor(uniform() * clusters)]);
    return liked[0].map((v, j) => v + 0.7 * liked[1][j] + 0.5 * liked[2][j]);
  });
  const queries = new Float32Array(options.queries * dim);
  for (let q = 0; q < options.queries; q++) {
    const taste = tastes[Math.floor(uniform() * tastes.length)];
    queries.set(
      unit((row) => row.forEach((_, j) => (row[j] = -0.8 * axis[j] + 0.5 * taste[j] + (0.05 / sqrt(dim)) * normal()))),
      q * dim,
    );
  }
  return { items, queries };
}
