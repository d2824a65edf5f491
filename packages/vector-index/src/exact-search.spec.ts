import { compareMatches, exactSearch, exactSearchBatch, scoreRow, TopK } from './exact-search.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type Metric } from './vector-store.js';

/** The obvious O(n log n) answer: score every row with plain arithmetic, sort, cut. */
function naive(
  vectors: Float32Array,
  dim: number,
  metric: Metric,
  query: Float32Array,
  k: number,
  keep: (row: number) => boolean = () => true,
) {
  const rows = [];
  for (let row = 0; row < vectors.length / dim; row++) {
    if (!keep(row)) continue;
    const v = Array.from(vectors.subarray(row * dim, (row + 1) * dim));
    const q = Array.from(query);
    const dot = v.reduce((s, x, j) => s + x * q[j]!, 0);
    const nv = Math.hypot(...v);
    const nq = Math.hypot(...q);
    const score = metric === 'ip' ? dot : metric === 'cos' ? dot / (nv * nq) : -Math.hypot(...v.map((x, j) => x - q[j]!));
    rows.push({ row, score });
  }
  return rows.sort((a, b) => b.score - a.score || a.row - b.row).slice(0, k);
}

describe('exactSearch', () => {
  const dim = 8;
  const vectors = clusteredUnitVectors({ count: 500, dim, clusters: 5, seed: 3 });
  // Unnormalised rows too, so that ip, cos and l2 rank differently.
  for (let i = 0; i < vectors.length; i += 3 * dim) for (let j = 0; j < dim; j++) vectors[i + j] *= 1 + (i % 7);
  const queries = clusteredUnitVectors({ count: 10, dim, clusters: 5, seed: 4 });

  it.each<Metric>(['ip', 'cos', 'l2'])('matches a naive sort for %s, rows and scores', (metric) => {
    for (let q = 0; q < 10; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      const got = exactSearch(vectors, dim, metric, query, 25);
      const want = naive(vectors, dim, metric, query, 25);
      expect(got.map((m) => m.row)).toEqual(want.map((m) => m.row));
      for (let i = 0; i < got.length; i++) expect(got[i]!.score).toBeCloseTo(want[i]!.score, 5);
      // The reported score is the one scoreRow (and so the HNSW re-scoring) gives, to the bit.
      for (const m of got) expect(m.score).toBe(scoreRow(vectors, dim, metric, query, m.row));
    }
  });

  it('restricts to accepted rows and to a row subset', () => {
    const query = queries.subarray(0, dim);
    const odd = (row: number) => row % 2 === 1;
    expect(exactSearch(vectors, dim, 'ip', query, 30, { accept: odd }).map((m) => m.row)).toEqual(
      naive(vectors, dim, 'ip', query, 30, odd).map((m) => m.row),
    );
    const subset = Int32Array.from({ length: 100 }, (_, i) => 4 * i + 1);
    const inSubset = (row: number) => row % 4 === 1 && row < 400;
    expect(exactSearch(vectors, dim, 'l2', query, 10, { rows: subset }).map((m) => m.row)).toEqual(
      naive(vectors, dim, 'l2', query, 10, inSubset).map((m) => m.row),
    );
  });

  it('breaks ties by the lower row whatever the scan order, and returns all rows when k exceeds them', () => {
    const flat = new Float32Array(6 * 2);
    for (let row = 0; row < 6; row++) flat.set(row % 2 === 0 ? [1, 0] : [0, 1], row * 2);
    const query = new Float32Array([1, 0]);
    expect(exactSearch(flat, 2, 'ip', query, 2)).toEqual([
      { row: 0, score: 1 },
      { row: 2, score: 1 },
    ]);
    expect(exactSearch(flat, 2, 'ip', query, 2, { rows: [4, 2, 0] }).map((m) => m.row)).toEqual([0, 2]);
    expect(exactSearch(flat, 2, 'ip', query, 50).map((m) => m.row)).toEqual([0, 2, 4, 1, 3, 5]);
  });

  it('answers many queries like one at a time', () => {
    const batch = exactSearchBatch(vectors, dim, 'cos', queries, 5);
    expect(batch).toHaveLength(10);
    batch.forEach((matches, q) => expect(matches).toEqual(exactSearch(vectors, dim, 'cos', queries.subarray(q * dim, (q + 1) * dim), 5)));
  });

  it('refuses mismatched shapes', () => {
    expect(() => exactSearch(vectors, dim, 'ip', new Float32Array(3), 5)).toThrow('query: expected 8 values, got 3');
    expect(() => exactSearch(vectors.subarray(1), dim, 'ip', queries.subarray(0, dim), 5)).toThrow('not a multiple of dim 8');
  });
});

describe('TopK', () => {
  it('keeps the k best of a stream, best first', () => {
    const top = new TopK(3);
    const scores = [0.5, 0.9, 0.1, 0.9, 0.7, 0.3];
    scores.forEach((s, row) => top.push(s, row));
    expect(top.sorted()).toEqual([
      { row: 1, score: 0.9 },
      { row: 3, score: 0.9 },
      { row: 4, score: 0.7 },
    ]);
    expect([...top.sorted()].sort(compareMatches)).toEqual(top.sorted());
  });

  it('gives the k best of random streams with ties in compareMatches order, and keeps them after sorting', () => {
    let seed = 9;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 200; trial++) {
      const k = Math.floor(random() * 40);
      const n = Math.floor(random() * 120);
      const top = new TopK(k);
      const all: { row: number; score: number }[] = [];
      for (let row = 0; row < n; row++) {
        // Few distinct scores: many ties, broken by the lower row.
        const score = Math.floor(random() * 8) / 4 - 1;
        all.push({ row, score });
        top.push(score, row);
      }
      const expected = all.sort(compareMatches).slice(0, k);
      expect(top.sorted()).toEqual(expected);
      expect(top.sorted()).toEqual(expected);
      expect(top.length).toBe(expected.length);
    }
  });
});
