import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceMetrics } from '@recsys/service-kit';
import { buildHnswIndex, clusteredUnitVectors, openHnswIndex, type HnswStore, type VectorStore } from '@recsys/vector-index';
import { RetrievalMetrics } from './retrieval-metrics.js';

describe("the serving index's item-to-item neighbour cache and search threads in the metrics", () => {
  const DIM = 8;
  const COUNT = 5000;
  let root: string;
  let store: HnswStore;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'retrieval-metrics-'));
    const vectors = clusteredUnitVectors({ count: COUNT, dim: DIM, clusters: 8, spread: 0.3, seed: 2 });
    const ids = Array.from({ length: COUNT }, (_, i) => `item-${i}`);
    await buildHnswIndex({ ids, vectors, dim: DIM, metric: 'ip', version: '1', modelVersion: 'm' }, join(root, '1'), { threads: 1 });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const scrape = async (serving: () => VectorStore) => {
    const metrics = new ServiceMetrics('retrieval');
    new RetrievalMetrics(metrics).watchNeighbourCache(serving);
    return metrics.registry.metrics();
  };

  it("shows the serving store's cached seeds and the share of seed searches it answered", async () => {
    // exactScanMaxRows 0: the graph, where the cache applies, even on this small index.
    store = await openHnswIndex(join(root, '1'), { exactScanMaxRows: 0 });
    for (const id of ['item-1', 'item-2', 'item-1', 'item-1']) await store.similar(id, 20);
    const text = await scrape(() => store);
    expect(text).toMatch(/^retrieval_item_to_item_cache_items\{service="retrieval"\} 2$/m);
    expect(text).toMatch(/^retrieval_item_to_item_cache_hit_ratio\{service="retrieval"\} 0\.5$/m);
  });

  it('shows 0 for a store without the cache (Qdrant) or before any seed', async () => {
    const fresh = await openHnswIndex(join(root, '1'), { exactScanMaxRows: 0 });
    // A store that is not an embedded index has no neighbourCacheStats.
    const withoutCache = { info: () => fresh.info() } as unknown as VectorStore;
    for (const serving of [() => fresh, () => withoutCache]) {
      const text = await scrape(serving);
      expect(text).toMatch(/^retrieval_item_to_item_cache_items\{service="retrieval"\} 0$/m);
      expect(text).toMatch(/^retrieval_item_to_item_cache_hit_ratio\{service="retrieval"\} 0$/m);
    }
  });

  it("shows the serving store's search threads, the searches none answered and the threads started again", async () => {
    const threaded = await openHnswIndex(join(root, '1'), { exactScanMaxRows: 0, searchWorkers: 1 });
    const text = async (serving: () => VectorStore) => {
      const metrics = new ServiceMetrics('retrieval');
      new RetrievalMetrics(metrics).watchSearchWorkers(serving);
      return metrics.registry.metrics();
    };
    try {
      const query = clusteredUnitVectors({ count: 1, dim: DIM, clusters: 1, spread: 0.3, seed: 3 });
      await threaded.search(query, 20);
      let scraped = await text(() => threaded);
      expect(scraped).toMatch(/^retrieval_search_worker_threads\{service="retrieval"\} 1$/m);
      expect(scraped).toMatch(/^retrieval_search_worker_fallbacks\{service="retrieval"\} 0$/m);
      await threaded.crashSearchWorker();
      // Until the new thread has opened the graph, searches run on the event loop.
      await threaded.search(query, 20);
      scraped = await text(() => threaded);
      expect(scraped).toMatch(/^retrieval_search_worker_restarts\{service="retrieval"\} 1$/m);
      expect(scraped).toMatch(/^retrieval_search_worker_fallbacks\{service="retrieval"\} [1-9]\d*$/m);
    } finally {
      await threaded.close();
    }
    // Without threads (the default, and Qdrant): zeros.
    const plain = await openHnswIndex(join(root, '1'));
    const scraped = await text(() => plain);
    await plain.close();
    for (const name of ['threads', 'fallbacks', 'restarts'])
      expect(scraped).toMatch(new RegExp(`^retrieval_search_worker_${name}\\{service="retrieval"\\} 0$`, 'm'));
  });
});
