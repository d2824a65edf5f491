import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHnswIndex, clusteredUnitVectors, openHnswIndex, type HnswStore, type VectorStore } from '@recsys/vector-index';
import { itemToItemCandidates } from './item-to-item.js';

const DIM = 16;
const COUNT = 6000;

/** The store's searches counted; `bound: false` hides scoreBound, as a store without one (Qdrant) has none. */
function counting(store: HnswStore, bound: boolean): { store: VectorStore; searches: () => number } {
  let searches = 0;
  const wrapped: VectorStore = {
    info: () => store.info(),
    search: (vector, k, options) => {
      searches++;
      return store.search(vector, k, options);
    },
    searchBatch: (vectors, k, options) => {
      searches += vectors.length;
      return store.searchBatch(vectors, k, options);
    },
    payloads: (ids) => store.payloads(ids),
    getVectors: (ids) => store.getVectors(ids),
    close: () => store.close(),
    ...(bound ? { scoreBound: (vector: Float32Array) => store.scoreBound(vector) } : {}),
  };
  return { store: wrapped, searches: () => searches };
}

describe('item-to-item candidates on a real HNSW index', () => {
  // Tight clusters, as a two-tower's items are: a seed's neighbours score close to 1, far above an older seed's
  // best possible score less its recency penalty.
  const vectors = clusteredUnitVectors({ count: COUNT, dim: DIM, clusters: 12, spread: 0.3, seed: 4 });
  const ids = Array.from({ length: COUNT }, (_, i) => `item-${i}`);
  const filter = { blocked: new Set(['item-3', 'item-40']), includeCategories: [], excludeCategories: [] };
  let root: string;
  let index: HnswStore;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'item-to-item-'));
    await buildHnswIndex({ ids, vectors, dim: DIM, metric: 'ip', version: '1', modelVersion: 'm' }, join(root, '1'), { threads: 1 });
    index = await openHnswIndex(join(root, '1'));
  });
  afterAll(async () => {
    await index.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('skips the older seeds that cannot reach the cut and answers exactly as searching every seed', async () => {
    const seeds = ['item-10', 'item-2000', 'item-3100', 'item-4500', 'item-5999'];
    const pruned = counting(index, true);
    const all = counting(index, false);
    const got = await itemToItemCandidates(pruned.store, seeds, 50, filter, 0.85);
    const want = await itemToItemCandidates(all.store, seeds, 50, filter, 0.85);
    expect(got).toEqual(want);
    expect(got).toHaveLength(50);
    expect(all.searches()).toBe(5);
    expect(pruned.searches()).toBe(1);
  });

  it('searches older seeds when their penalty is small enough to matter, with the same answer', async () => {
    const seeds = ['item-10', 'item-2000', 'item-3100'];
    const pruned = counting(index, true);
    const all = counting(index, false);
    // decay 0.9999: an older seed's neighbours lose almost nothing and can displace the newest seed's.
    const got = await itemToItemCandidates(pruned.store, seeds, 50, filter, 0.9999);
    expect(got).toEqual(await itemToItemCandidates(all.store, seeds, 50, filter, 0.9999));
    expect(pruned.searches()).toBe(3);
  });

  it("asks a store that can for each seed's neighbours by id (similar), with the answer the seeds' vectors give", async () => {
    // A store of its own: similar keeps what it found, and the counts below start from nothing.
    const byId = await openHnswIndex(join(root, '1'));
    const byVector = counting(index, true);
    const seeds = ['item-10', 'item-2000', 'item-3100'];
    try {
      for (const decay of [0.85, 0.9999]) {
        const want = await itemToItemCandidates(byVector.store, seeds, 50, filter, decay);
        expect(await itemToItemCandidates(byId, seeds, 50, filter, decay)).toEqual(want);
      }
      // 0.85 searched the newest seed alone; 0.9999 all three, the newest from the cache.
      expect(byId.neighbourCacheStats()).toEqual({ hits: 1, misses: 3, items: 3 });
    } finally {
      await byId.close();
    }
  });

  it('bounds every score: no item beats scoreBound (ip, queries longer than the items)', async () => {
    for (const q of [0, 1, 2]) {
      const query = vectors.slice(q * DIM, (q + 1) * DIM).map((v) => v * 1.7);
      const [best] = await index.search(query, 1);
      expect(best!.score).toBeLessThanOrEqual(index.scoreBound(query));
    }
  });
});
