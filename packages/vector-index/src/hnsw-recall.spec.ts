import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactSearch } from './exact-search.js';
import { buildHnswIndex, DEFAULT_HNSW_PARAMS, openHnswIndex, type HnswStore } from './hnsw-store.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type Neighbour } from './vector-store.js';

// The defaults (chosen on a real two-tower's 1M items, see the README) checked on 100k clustered vectors; ~10 s on 2 cores.
const COUNT = 100_000;
const DIM = 32;
const QUERIES = 200;
const K = 100;

describe(`HNSW recall@${K} against exact search, ${COUNT} clustered unit vectors of dim ${DIM}`, () => {
  const vectors = clusteredUnitVectors({ count: COUNT, dim: DIM, seed: 21 });
  const ids = Array.from({ length: COUNT }, (_, i) => `item-${i}`);
  // Categories follow the geometry (the side of two fixed hyperplanes), like genres in a trained embedding space: near
  // most queries, items of another category are rare, which is what makes a category filter need a wider search.
  const categoryOf = (row: number) => `c${(vectors[row * DIM]! > 0 ? 1 : 0) + (vectors[row * DIM + 1]! > 0 ? 2 : 0)}`;
  const payload = ids.map((_, row) => ({ category: categoryOf(row) }));
  // Users drawn from the items' clusters (same centres, other points).
  const queries = clusteredUnitVectors({ count: QUERIES, dim: DIM, seed: 22 });
  const query = (q: number) => queries.subarray(q * DIM, (q + 1) * DIM);
  let root: string;
  let store: HnswStore;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'vector-recall-'));
    await buildHnswIndex({ ids, vectors, dim: DIM, metric: 'ip', payload, version: '1', modelVersion: 'synthetic' }, join(root, '1'));
    store = await openHnswIndex(join(root, '1'));
  }, 120_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const recall = (got: Neighbour[], exact: string[]): number => {
    const wanted = new Set(exact);
    return got.filter((n) => wanted.has(n.id)).length / exact.length;
  };

  it(`reaches a mean recall ≥ 0.95 over ${QUERIES} queries with the default parameters`, () => {
    expect(store.meta.hnsw).toEqual(DEFAULT_HNSW_PARAMS);
    const recalls = [];
    for (let q = 0; q < QUERIES; q++) {
      const exact = exactSearch(vectors, DIM, 'ip', query(q), K).map((m) => ids[m.row]!);
      const got = store.searchNow(query(q), K);
      expect(got).toHaveLength(K);
      recalls.push(recall(got, exact));
    }
    const mean = recalls.reduce((a, b) => a + b, 0) / QUERIES;
    expect(mean).toBeGreaterThanOrEqual(0.95);
    expect(Math.min(...recalls)).toBeGreaterThanOrEqual(0.8);
  });

  it('keeps that recall when the exact top 100 of each query is excluded', () => {
    let sum = 0;
    const n = 50;
    for (let q = 0; q < n; q++) {
      const ranked = exactSearch(vectors, DIM, 'ip', query(q), 2 * K).map((m) => ids[m.row]!);
      const excludeIds = new Set(ranked.slice(0, K));
      const got = store.searchNow(query(q), K, { excludeIds });
      expect(got).toHaveLength(K);
      expect(got.some((m) => excludeIds.has(m.id))).toBe(false);
      sum += recall(got, ranked.slice(K));
    }
    expect(sum / n).toBeGreaterThanOrEqual(0.95);
  });

  it('returns k items of an included category with that recall, whether or not the category is near the query', () => {
    let sum = 0;
    const n = 40;
    for (let q = 0; q < n; q++) {
      const category = `c${q % 4}`;
      const inCategory = (row: number) => categoryOf(row) === category;
      const exact = exactSearch(vectors, DIM, 'ip', query(q), K, { accept: inCategory }).map((m) => ids[m.row]!);
      const got = store.searchNow(query(q), K, { includeCategories: [category] });
      expect(got).toHaveLength(K);
      expect(got.every((m) => inCategory(Number(m.id.slice(5))))).toBe(true);
      sum += recall(got, exact);
    }
    expect(sum / n).toBeGreaterThanOrEqual(0.95);
  });
});
