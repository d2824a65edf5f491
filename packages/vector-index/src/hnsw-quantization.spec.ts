import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VectorIndexArgumentError } from './errors.js';
import { exactSearch } from './exact-search.js';
import { buildHnswIndex, openHnswIndex } from './hnsw-store.js';
import { INDEX_FILES, type GraphQuantization } from './index-files.js';
import { modalityGapVectors } from './synthetic-vectors.js';
import { type IndexBuildInput } from './vector-store.js';

const DIM = 32;
const COUNT = 20_000;
const K = 100;

describe('quantised HNSW graphs (usearch scalar kinds), query-aware, re-scored exactly', () => {
  // Queries far from the items (a two-tower's users): the first 100 are measured, the rest fit the query space.
  const gap = modalityGapVectors({ items: COUNT, queries: 600, dim: DIM, seed: 5 });
  const input: IndexBuildInput = {
    ids: Array.from({ length: COUNT }, (_, i) => `item-${i}`),
    vectors: gap.items,
    dim: DIM,
    metric: 'ip',
    version: '1',
    modelVersion: 'two-tower-test',
  };
  const querySample = gap.queries.subarray(100 * DIM);
  const query = (q: number) => gap.queries.subarray(q * DIM, (q + 1) * DIM);
  const hnsw = { connectivity: 16, expansionAdd: 64, expansionSearch: 64 };
  let root: string;
  const graphBytes: Partial<Record<GraphQuantization, number>> = {};

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'vector-quantized-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(['f32', 'f16'] as const)('%s: recall@100 ≥ 0.95 against exact search, scores exact, kind in meta.json', async (kind) => {
    const dir = join(root, kind);
    const meta = await buildHnswIndex({ ...input, version: kind }, dir, { hnsw: { ...hnsw, quantization: kind }, threads: 1, querySample });
    expect(meta.hnsw.quantization).toBe(kind);
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).hnsw.quantization).toBe(kind);
    graphBytes[kind] = statSync(join(dir, INDEX_FILES.graph)).size;
    const store = await openHnswIndex(dir, { exactScanMaxRows: 0, expansionPerResult: 1 });
    expect(store.meta.hnsw.quantization).toBe(kind);
    let found = 0;
    for (let q = 0; q < 100; q++) {
      const exact = exactSearch(input.vectors, DIM, 'ip', query(q), K);
      const got = store.searchNow(query(q), K);
      expect(got).toHaveLength(K);
      const wanted = new Map(exact.map((m) => [input.ids[m.row]!, m.score]));
      for (const hit of got) {
        const score = wanted.get(hit.id);
        if (score === undefined) continue;
        found++;
        // Re-scored from the float32 vectors: the graph's rounding never reaches a score.
        expect(hit.score).toBe(score);
      }
    }
    expect(found / (100 * K)).toBeGreaterThanOrEqual(0.95);
    await store.close();
  });

  it('stores the graph vectors in the chosen kind: f16 saves 2 bytes per value against f32', () => {
    // The query-aware graph holds dim + 1 values per item; links are the same size whatever the kind.
    expect(graphBytes.f32! - graphBytes.f16!).toBe(2 * COUNT * (DIM + 1));
  });

  it('opens a version written before the option as f32', async () => {
    const dir = join(root, 'f32');
    const metaPath = join(dir, 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    delete meta.hnsw.quantization;
    writeFileSync(metaPath, JSON.stringify(meta));
    const store = await openHnswIndex(dir);
    expect(store.meta.hnsw.quantization).toBe('f32');
    await store.close();
  });

  it('refuses a kind it does not offer', async () => {
    for (const kind of ['i8', 'bf16', 'f8'])
      await expect(
        buildHnswIndex(input, join(root, `bad-${kind}`), { hnsw: { quantization: kind as GraphQuantization }, querySample }),
      ).rejects.toThrow(VectorIndexArgumentError);
  });
});
