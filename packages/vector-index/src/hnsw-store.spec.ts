import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexFileError, StoreClosedError, VectorIndexArgumentError } from './errors.js';
import { exactSearch, scoreRow } from './exact-search.js';
import { Index } from 'usearch';
import { buildHnswIndex, graphFetch, openHnswIndex, type HnswStore } from './hnsw-store.js';
import { INDEX_FILES, QUERY_TRANSFORM_FILE } from './index-files.js';
import { clusteredUnitVectors, modalityGapVectors } from './synthetic-vectors.js';
import { type IndexBuildInput, type ItemPayload, type Metric, type Neighbour, type SearchOptions } from './vector-store.js';

const DIM = 16;
const COUNT = 3000;

/** 3000 items in 10 clusters; category c<cluster> except 60 'rare' items and every 50th item without one. */
function catalogue(metric: Metric = 'ip', version = '1'): IndexBuildInput {
  const vectors = clusteredUnitVectors({ count: COUNT, dim: DIM, clusters: 10, spread: 0.6, seed: 11 });
  const ids = Array.from({ length: COUNT }, (_, i) => `item-${i}`);
  const payload: ItemPayload[] = ids.map((_, i) => {
    if (i % 50 === 7) return i % 100 === 7 ? { createdAtMs: 1_700_000_000_000 + i } : {};
    if (i % 50 === 3) return { category: 'rare' };
    return { category: `c${i % 10}`, createdAtMs: 1_700_000_000_000 + i };
  });
  return { ids, vectors, dim: DIM, metric, payload, version, modelVersion: 'two-tower-test' };
}

function rowOf(id: string): number {
  return Number(id.slice('item-'.length));
}

/** The exact answer with ids, for comparing a store's results. */
function exactIds(input: IndexBuildInput, query: Float32Array, k: number, keep: (row: number) => boolean = () => true): string[] {
  return exactSearch(input.vectors, input.dim, input.metric, query, k, { accept: keep }).map((m) => input.ids[m.row]!);
}

function overlap(got: Neighbour[], want: string[]): number {
  const wanted = new Set(want);
  return got.filter((n) => wanted.has(n.id)).length / want.length;
}

function expectBestFirst(results: Neighbour[]): void {
  for (let i = 1; i < results.length; i++) expect(results[i - 1]!.score).toBeGreaterThanOrEqual(results[i]!.score);
}

describe('embedded HNSW store', () => {
  let root: string;
  let dir: string;
  const input = catalogue();
  const queries = clusteredUnitVectors({ count: 20, dim: DIM, clusters: 10, spread: 0.6, seed: 12 });
  const query = (q: number) => queries.subarray(q * DIM, (q + 1) * DIM);
  // exactScanMaxRows 0: every search goes through the graph, so filters exercise over-fetching and widening.
  let graph: HnswStore;
  let small: HnswStore;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'vector-hnsw-'));
    dir = join(root, '1');
    await buildHnswIndex(input, dir, { hnsw: { connectivity: 16, expansionAdd: 64, expansionSearch: 64 } });
    graph = await openHnswIndex(dir, { exactScanMaxRows: 0 });
    small = await openHnswIndex(dir);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  describe('files', () => {
    it('writes one directory with every file, no staging left behind, and reads it back', async () => {
      expect(readdirSync(root)).toEqual(['1']);
      expect(readdirSync(dir).sort()).toEqual([...Object.values(INDEX_FILES), 'meta.json'].sort());
      const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
      expect(meta).toMatchObject({ version: '1', modelVersion: 'two-tower-test', metric: 'ip', dim: DIM, count: COUNT });
      expect(meta.files[INDEX_FILES.vectors]).toEqual({ bytes: COUNT * DIM * 4, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(graph.info()).toEqual({
        version: '1',
        backend: 'embedded',
        size: COUNT,
        dimension: DIM,
        metric: 'ip',
        modelVersion: 'two-tower-test',
      });

      const vectors = await graph.getVectors(['item-5', 'nope', 'item-2999']);
      expect(vectors[0]).toEqual(input.vectors.slice(5 * DIM, 6 * DIM));
      expect(vectors[1]).toBeUndefined();
      expect(vectors[2]).toEqual(input.vectors.slice(2999 * DIM, 3000 * DIM));
      // Copies: writing into one does not change the store.
      vectors[0]!.fill(0);
      expect((await graph.getVectors(['item-5']))[0]).toEqual(input.vectors.slice(5 * DIM, 6 * DIM));

      expect(graph.payloadOf('item-3')).toEqual({ category: 'rare' });
      expect(graph.payloadOf('item-10')).toEqual({ category: 'c0', createdAtMs: 1_700_000_000_010 });
      expect(graph.payloadOf('item-57')).toEqual({});
      expect(graph.payloadOf('item-7')).toEqual({ createdAtMs: 1_700_000_000_007 });
    });

    it('writes the same graph from the same input on every build (one insertion thread by default: usearch#735)', async () => {
      const twice = mkdtempSync(join(tmpdir(), 'vector-hnsw-twice-'));
      try {
        const first = await buildHnswIndex({ ...input, version: 'a' }, join(twice, 'a'));
        const second = await buildHnswIndex({ ...input, version: 'b' }, join(twice, 'b'));
        expect(second.files[INDEX_FILES.graph]).toEqual(first.files[INDEX_FILES.graph]);
      } finally {
        rmSync(twice, { recursive: true, force: true });
      }
    });

    it('answers the same from a loaded and a memory-mapped (view) index', async () => {
      const viewed = await openHnswIndex(dir, { mode: 'view', exactScanMaxRows: 0, verify: 'size' });
      for (let q = 0; q < 5; q++) expect(await viewed.search(query(q), 30)).toEqual(await graph.search(query(q), 30));
    });

    it('refuses to overwrite a version and names the first invalid input field', async () => {
      await expect(buildHnswIndex(input, dir)).rejects.toThrow(/already exists: versions are immutable/);
      const duplicate = { ...input, ids: input.ids.map((id, i) => (i === 9 ? 'item-4' : id)), version: '2' };
      await expect(buildHnswIndex(duplicate, join(root, '2'))).rejects.toThrow('ids[9]: "item-4" appears twice');
      const nan = { ...input, vectors: input.vectors.slice(), version: '2' };
      nan.vectors[5 * DIM + 2] = NaN;
      await expect(buildHnswIndex(nan, join(root, '2'))).rejects.toThrow(
        'vectors: item "item-5" (row 5) has a non-finite value at position 2',
      );
      await expect(buildHnswIndex({ ...input, vectors: input.vectors.subarray(1) }, join(root, '2'))).rejects.toThrow(
        VectorIndexArgumentError,
      );
      expect(readdirSync(root)).toEqual(['1']);
    });
  });

  describe('corrupt or missing files', () => {
    let copy: string;
    beforeEach(() => {
      copy = mkdtempSync(join(tmpdir(), 'vector-corrupt-'));
      cpSync(dir, copy, { recursive: true });
    });
    afterEach(() => rmSync(copy, { recursive: true, force: true }));

    const flipByte = (name: string, at: number) => {
      const path = join(copy, name);
      const bytes = readFileSync(path);
      bytes[at] = bytes[at]! ^ 0xff;
      writeFileSync(path, bytes);
    };

    it('refuses a changed byte, naming the file', async () => {
      flipByte(INDEX_FILES.vectors, 1234);
      await expect(openHnswIndex(copy)).rejects.toThrow(new RegExp(`${INDEX_FILES.vectors}: checksum mismatch .* the file is corrupt`));
      await expect(openHnswIndex(copy)).rejects.toBeInstanceOf(IndexFileError);
    });

    it('refuses a changed graph file, naming it', async () => {
      flipByte(INDEX_FILES.graph, 5000);
      await expect(openHnswIndex(copy)).rejects.toThrow(`${join(copy, INDEX_FILES.graph)}: checksum mismatch`);
    });

    it('refuses a truncated file even when checksums are skipped', async () => {
      truncateSync(join(copy, INDEX_FILES.graph), 1000);
      await expect(openHnswIndex(copy, { verify: 'size' })).rejects.toThrow(
        /index\.usearch: 1000 bytes, but meta\.json records \d+: the file is truncated/,
      );
    });

    it('refuses a missing file or meta.json', async () => {
      unlinkSync(join(copy, INDEX_FILES.ids));
      await expect(openHnswIndex(copy)).rejects.toThrow(`${join(copy, INDEX_FILES.ids)}: missing`);
      unlinkSync(join(copy, 'meta.json'));
      await expect(openHnswIndex(copy)).rejects.toThrow(
        `${join(copy, 'meta.json')}: missing: not an index directory, or an incomplete one`,
      );
    });

    it('refuses a meta.json that is not JSON or disagrees with the data', async () => {
      const metaPath = join(copy, 'meta.json');
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      writeFileSync(metaPath, JSON.stringify({ ...meta, count: COUNT + 1 }));
      await expect(openHnswIndex(copy)).rejects.toThrow(
        `${join(copy, INDEX_FILES.vectors)}: ${COUNT * DIM * 4} bytes, but ${COUNT + 1} items need`,
      );
      writeFileSync(metaPath, '{"format": ');
      await expect(openHnswIndex(copy)).rejects.toThrow(/meta\.json: not valid JSON/);
    });

    it('refuses HNSW parameters out of range in meta.json and in build options alike, naming the field', async () => {
      const metaPath = join(copy, 'meta.json');
      const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
      writeFileSync(metaPath, JSON.stringify({ ...meta, hnsw: { ...meta.hnsw, connectivity: 0 } }));
      await expect(openHnswIndex(copy)).rejects.toThrow(`${metaPath}: "hnsw.connectivity" 0 is not a positive integer`);
      writeFileSync(metaPath, JSON.stringify({ ...meta, hnsw: { ...meta.hnsw, quantization: 'i8' } }));
      await expect(openHnswIndex(copy)).rejects.toThrow(`${metaPath}: "hnsw.quantization" "i8" is not one of f32, f16`);

      const build = (hnsw: object) => buildHnswIndex({ ...input, version: '2' }, join(copy, '2'), { hnsw });
      await expect(build({ expansionSearch: 2.5 })).rejects.toThrow(
        new VectorIndexArgumentError('hnsw.expansionSearch', '2.5 is not a positive integer'),
      );
      await expect(build({ quantization: 'i8' })).rejects.toThrow(
        new VectorIndexArgumentError('hnsw.quantization', '"i8" is not one of f32, f16'),
      );
    });
  });

  it('round-trips ids of any text through ids.json: searches, payloads and vectors by id (ids held as one buffer)', async () => {
    const odd = ['ünïcødé', 'emoji-😀', 'a"quote', 'back\\slash', 'tab\tin', 'item-12'];
    const ids = input.ids.map((id, i) => (i < odd.length ? odd[i]! : `${id}-${i % 7 === 0 ? 'ß' : 'x'}`));
    const oddDir = join(root, 'odd-ids');
    await buildHnswIndex({ ...input, ids, version: 'odd' }, oddDir, { hnsw: { connectivity: 16, expansionAdd: 64, expansionSearch: 64 } });
    const store = await openHnswIndex(oddDir);
    try {
      const got = await store.search(query(0), COUNT);
      expect(got.map((n) => n.id).sort()).toEqual([...ids].sort());
      const vectors = await store.getVectors([...ids, 'not-there']);
      ids.forEach((_, row) => expect(Array.from(vectors[row]!)).toEqual(Array.from(input.vectors.subarray(row * DIM, (row + 1) * DIM))));
      expect(vectors[ids.length]).toBeUndefined();
      expect(await store.payloads(ids.slice(0, 4))).toEqual(input.payload!.slice(0, 4));
      const without = await store.search(query(1), 10, { excludeIds: new Set(odd) });
      expect(without.some((n) => odd.includes(n.id))).toBe(false);
    } finally {
      await store.close();
    }
    const dup = join(root, 'dup-ids');
    cpSync(oddDir, dup, { recursive: true });
    // A repeated id (same file size, so only the ids can tell) would shift every later row: refused.
    writeFileSync(join(dup, INDEX_FILES.ids), JSON.stringify(ids.map((id, i) => (i === 5 ? ids[4]! : id))));
    await expect(openHnswIndex(dup, { verify: 'size' })).rejects.toThrow(/ids\.json: not a JSON array of distinct strings .*repeated/);
  });

  describe('search', () => {
    it('scans exactly below exactScanMaxRows: the exact answer, ties and all', async () => {
      for (let q = 0; q < 5; q++) {
        const got = await small.search(query(q), 40);
        expect(got.map((n) => n.id)).toEqual(exactIds(input, query(q), 40));
        expect(got[0]!.score).toBe(scoreRow(input.vectors, DIM, 'ip', query(q), rowOf(got[0]!.id)));
      }
    });

    it('searches the graph with exact scores, best first', async () => {
      let recall = 0;
      for (let q = 0; q < 20; q++) {
        const got = await graph.search(query(q), 50);
        expect(got).toHaveLength(50);
        expectBestFirst(got);
        for (const n of got) expect(n.score).toBe(scoreRow(input.vectors, DIM, 'ip', query(q), rowOf(n.id)));
        recall += overlap(got, exactIds(input, query(q), 50)) / 20;
      }
      expect(recall).toBeGreaterThanOrEqual(0.95);
    });

    it('returns k results when the top items are excluded, none of them excluded', async () => {
      for (let q = 0; q < 5; q++) {
        const excludeIds = new Set(exactIds(input, query(q), 300));
        const got = await graph.search(query(q), 100, { excludeIds });
        expect(got).toHaveLength(100);
        expect(got.filter((n) => excludeIds.has(n.id))).toEqual([]);
        expectBestFirst(got);
        expect(
          overlap(
            got,
            exactIds(input, query(q), 100, (row) => !excludeIds.has(input.ids[row]!)),
          ),
        ).toBeGreaterThanOrEqual(0.9);
      }
    });

    it('asks the graph for exactly k plus the excluded items when ids alone are excluded', async () => {
      // The beam is the search's cost: excluded ids are the only rows that can fail, so no margin is needed on top.
      const excludeIds = new Set([...exactIds(input, query(2), 40), 'not-an-item']);
      const search = jest.spyOn(Index.prototype, 'search');
      try {
        const got = await graph.search(query(2), 100, { excludeIds });
        expect(got).toHaveLength(100);
        expect(search.mock.calls.map((call) => call[1])).toEqual([140]);
      } finally {
        search.mockRestore();
      }
    });

    it('returns k items of a rare included category, or all of them when fewer exist', async () => {
      const rare = (row: number) => row % 50 === 3;
      for (let q = 0; q < 5; q++) {
        const got = await graph.search(query(q), 20, { includeCategories: ['rare'] });
        expect(got).toHaveLength(20);
        expect(got.every((n) => rare(rowOf(n.id)))).toBe(true);
        expect(overlap(got, exactIds(input, query(q), 20, rare))).toBeGreaterThanOrEqual(0.9);
      }
      const all = await graph.search(query(0), 100, { includeCategories: ['rare', 'unknown-category'] });
      expect(all.map((n) => n.id).sort()).toEqual(input.ids.filter((_, row) => rare(row)).sort());
      expect(await graph.search(query(0), 10, { includeCategories: ['unknown-category'] })).toEqual([]);
    });

    it('widens past the graph when the only qualifying items are the farthest from the query', async () => {
      // 'far' marks the 150 items least like the query: no fetch around the query reaches them, yet k must come back.
      const farthest = exactSearch(
        input.vectors,
        DIM,
        'ip',
        query(0).map((x) => -x),
        150,
      ).map((m) => m.row);
      const far = new Set(farthest);
      const payload = input.ids.map((_, row) => ({ category: far.has(row) ? 'far' : 'near' }));
      const farDir = join(root, 'far');
      await buildHnswIndex({ ...input, payload, version: 'far' }, farDir);
      const store = await openHnswIndex(farDir, { exactScanMaxRows: 0 });
      const got = await store.search(query(0), 100, { includeCategories: ['far'] });
      expect(got.map((n) => n.id)).toEqual(exactIds(input, query(0), 100, (row) => far.has(row)));
      const excluded = await store.search(query(0), 100, {
        excludeCategories: ['near'],
        excludeIds: new Set(got.slice(0, 60).map((n) => n.id)),
      });
      expect(excluded.map((n) => n.id)).toEqual(exactIds(input, query(0), 150, (row) => far.has(row)).slice(60));
    });

    it('returns k results when excluded categories hold most items', async () => {
      const excludeCategories = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'];
      const kept = (row: number) => !(row % 50 !== 7 && row % 50 !== 3 && row % 10 !== 9);
      const got = await graph.search(query(3), 100, { excludeCategories });
      expect(got).toHaveLength(100);
      expect(got.every((n) => kept(rowOf(n.id)))).toBe(true);
      expect(overlap(got, exactIds(input, query(3), 100, kept))).toBeGreaterThanOrEqual(0.9);
    });

    it('combines included categories, excluded categories and excluded ids', async () => {
      const top = await graph.search(query(1), 10, { includeCategories: ['c1', 'c2'] });
      const excludeIds = new Set(top.slice(0, 5).map((n) => n.id));
      const got = await graph.search(query(1), 30, { includeCategories: ['c1', 'c2', 'c3'], excludeCategories: ['c3'], excludeIds });
      expect(got).toHaveLength(30);
      expect(got.every((n) => [1, 2].includes(rowOf(n.id) % 10) && rowOf(n.id) % 50 !== 7 && rowOf(n.id) % 50 !== 3)).toBe(true);
      expect(got.some((n) => excludeIds.has(n.id))).toBe(false);
      expect(got.map((n) => n.id).slice(0, 5)).toEqual(top.slice(5, 10).map((n) => n.id));
    });

    it('returns every item when k exceeds the catalogue, and all but the excluded ones', async () => {
      expect(await graph.search(query(0), COUNT + 10)).toHaveLength(COUNT);
      expect(await graph.search(query(0), COUNT, { excludeIds: new Set(['item-1', 'item-2', 'not-an-item']) })).toHaveLength(COUNT - 2);
    });

    it('returns each result with its stored payload, and payloads by id', async () => {
      const got = await graph.search(query(0), 60);
      for (const n of got) expect(n.payload).toEqual(graph.payloadOf(n.id));
      expect(got.some((n) => n.payload?.category !== undefined && n.payload.createdAtMs !== undefined)).toBe(true);
      expect(await graph.payloads(['item-3', 'nope', 'item-57', 'item-10'])).toEqual([
        { category: 'rare' },
        undefined,
        {},
        { category: 'c0', createdAtMs: 1_700_000_000_010 },
      ]);
    });

    it('answers a batch as one search per vector would, filters and widening included', async () => {
      const vectors = [0, 1, 2, 3, 4].map(query);
      const options = { excludeIds: new Set(exactIds(input, query(0), 30)), excludeCategories: ['c1', 'c2'] };
      for (const [store, k, opts] of [
        [graph, 40, {}],
        [graph, 40, options],
        [graph, 20, { includeCategories: ['rare'] }],
        [small, 40, options],
      ] as const) {
        const batch = await store.searchBatch(vectors, k, opts);
        const single = await Promise.all(vectors.map((v) => store.search(v, k, opts)));
        expect(batch.map((hits) => hits.map((n) => n.id))).toEqual(single.map((hits) => hits.map((n) => n.id)));
        for (const hits of batch) expect(hits).toHaveLength(k);
      }
      expect(await graph.searchBatch([], 10)).toEqual([]);
      await expect(graph.searchBatch([query(0), new Float32Array(3)], 10)).rejects.toThrow(
        'vectors[1]: expected a Float32Array of 16 values, got Float32Array of length 3',
      );
    });

    it('refuses bad arguments, naming them', async () => {
      await expect(graph.search(new Float32Array(3), 10)).rejects.toThrow(
        'vector: expected a Float32Array of 16 values, got Float32Array of length 3',
      );
      await expect(graph.search([...query(0)] as unknown as Float32Array, 10)).rejects.toThrow(
        'vector: expected a Float32Array of 16 values, got an array',
      );
      const nan = query(0).slice();
      nan[4] = NaN;
      await expect(graph.search(nan, 10)).rejects.toThrow('vector: value 4 is not finite');
      for (const k of [0, -1, 2.5, NaN]) await expect(graph.search(query(0), k)).rejects.toThrow(VectorIndexArgumentError);
      await expect(graph.search(query(0), 10, { excludeIds: ['item-1'] as unknown as Set<string> })).rejects.toThrow(
        'excludeIds: a Set of item ids is required',
      );
      await expect(graph.search(query(0), 10, { includeCategories: 'c1' as unknown as string[] })).rejects.toThrow(
        'includeCategories: an array',
      );
    });
  });

  it.each<Metric>(['cos', 'l2'])('builds and searches a %s index, scores higher-is-closer and equal to the exact ones', async (metric) => {
    const base = catalogue(metric, `m-${metric}`);
    // Unnormalised rows: cos, ip and l2 then rank differently.
    const vectors = base.vectors.slice();
    for (let i = 0; i < COUNT; i++) for (let j = 0; j < DIM; j++) vectors[i * DIM + j] *= 1 + (i % 5) * 0.5;
    const metricInput = { ...base, vectors };
    const metricDir = join(root, `m-${metric}`);
    await buildHnswIndex(metricInput, metricDir, { threads: 1 });
    const store = await openHnswIndex(metricDir, { exactScanMaxRows: 0 });
    expect(store.info().metric).toBe(metric);
    const got = await store.search(query(2), 30);
    expectBestFirst(got);
    if (metric === 'l2') expect(got.every((n) => n.score <= 0)).toBe(true);
    for (const n of got) expect(n.score).toBe(scoreRow(vectors, DIM, metric, query(2), rowOf(n.id)));
    expect(overlap(got, exactIds(metricInput, query(2), 30))).toBeGreaterThanOrEqual(0.9);
  });

  it.each<Metric>(['ip', 'cos', 'l2'])('bounds every %s score from above with scoreBound, for short and long queries', async (metric) => {
    const base = catalogue(metric, `b-${metric}`);
    // Item norms from 1 to 3, queries from 0.2 to 5 long: the bound must hold at both ends.
    const vectors = base.vectors.slice();
    for (let i = 0; i < COUNT; i++) for (let j = 0; j < DIM; j++) vectors[i * DIM + j] *= 1 + (i % 5) * 0.5;
    const boundDir = join(root, `b-${metric}`);
    await buildHnswIndex({ ...base, vectors }, boundDir, { threads: 1 });
    const store = await openHnswIndex(boundDir);
    for (const scale of [0.2, 1, 5])
      for (let q = 0; q < 5; q++) {
        const long = query(q).map((v) => v * scale);
        const best = exactSearch(vectors, DIM, metric, long, 1)[0]!.score;
        const bound = store.scoreBound(long);
        expect(best).toBeLessThanOrEqual(bound);
        // Not vacuous: within the spread of item norms (3x) of the best score that exists.
        if (metric === 'ip') expect(bound).toBeLessThanOrEqual(Math.abs(best) * 3 + 1e-6);
      }
    await store.close();
    expect(() => store.scoreBound(query(0))).toThrow(StoreClosedError);
  });

  describe("similar: an item's neighbours by id, repeated items from a cache", () => {
    const vectorOf = (row: number) => input.vectors.slice(row * DIM, (row + 1) * DIM);
    /** The graph's answer for an item's vector from a search of `depth`, then `keep` applied: what a cached entry yields. */
    const fromDepth = async (store: HnswStore, row: number, depth: number, k: number, keep: (id: string) => boolean) =>
      (await store.search(vectorOf(row), depth)).filter((n) => keep(n.id)).slice(0, k);
    const graphCalls = async <T>(run: () => Promise<T>): Promise<{ result: T; beams: number[] }> => {
      const search = jest.spyOn(Index.prototype, 'search');
      try {
        const result = await run();
        return { result, beams: search.mock.calls.map((call) => call[1] as number) };
      } finally {
        search.mockRestore();
      }
    };

    it('searches a new item once, a quarter deeper than asked, and answers it again from the cache without the graph', async () => {
      const store = await openHnswIndex(dir, { exactScanMaxRows: 0 });
      const excludeIds = new Set(['item-5']);
      const first = await graphCalls(() => store.similar('item-5', 50, { excludeIds }));
      // k 50 + 1 excluded, and a quarter of 50 (13) more.
      expect(first.beams).toEqual([64]);
      expect(first.result).toHaveLength(50);
      // Exactly the top of that deeper search, its own item left out: a search at least as deep as `search` makes.
      expect(first.result).toEqual(await fromDepth(store, 5, 64, 50, (id) => id !== 'item-5'));
      const again = await graphCalls(() => store.similar('item-5', 50, { excludeIds }));
      expect(again.beams).toEqual([]);
      expect(again.result).toEqual(first.result);
      expect(store.neighbourCacheStats()).toEqual({ hits: 1, misses: 1, items: 1 });
    });

    it("filters the cached neighbours by each request's exclusions, and searches again when a request fetches deeper", async () => {
      const store = await openHnswIndex(dir, { exactScanMaxRows: 0 });
      const first = await store.similar('item-9', 50, { excludeIds: new Set(['item-9']) });
      const some = new Set(['item-9', ...first.slice(0, 10).map((n) => n.id)]);
      const filtered = await graphCalls(() => store.similar('item-9', 50, { excludeIds: some }));
      expect(filtered.beams).toEqual([]);
      // 11 excluded: this request's own fetch (50 + 11) is within the cached 64.
      expect(filtered.result).toEqual(await fromDepth(store, 9, 64, 50, (id) => !some.has(id)));
      // 61 excluded: this request's own fetch (50 + 61) is deeper than the cached 64, so the item is searched again.
      const near = (await fromDepth(store, 9, 100, 100, (id) => id !== 'item-9')).map((n) => n.id);
      const many = new Set(['item-9', ...near.slice(0, 60)]);
      expect(many.size).toBe(61);
      const deeper = await graphCalls(() => store.similar('item-9', 50, { excludeIds: many }));
      expect(deeper.beams).toEqual([124]);
      expect(deeper.result).toEqual(await fromDepth(store, 9, 124, 50, (id) => !many.has(id)));
      expect(store.neighbourCacheStats()).toEqual({ hits: 1, misses: 2, items: 1 });
    });

    it('answers as search does, leaving the cache alone, for category filters', async () => {
      const store = await openHnswIndex(dir, { exactScanMaxRows: 0 });
      const options = { includeCategories: ['rare'], excludeIds: new Set(['item-3']) };
      expect(await store.similar('item-3', 20, options)).toEqual(await store.search(vectorOf(3), 20, options));
      const without = { excludeCategories: ['c1'] };
      expect(await store.similar('item-3', 20, without)).toEqual(await store.search(vectorOf(3), 20, without));
      expect(store.neighbourCacheStats()).toEqual({ hits: 0, misses: 0, items: 0 });
    });

    it('keeps at most neighbourCacheItems items, the least recently used dropped first; 0 keeps none', async () => {
      const two = await openHnswIndex(dir, { exactScanMaxRows: 0, neighbourCacheItems: 2 });
      for (const id of ['item-1', 'item-2', 'item-1', 'item-4', 'item-1', 'item-2']) await two.similar(id, 10);
      // item-1 miss, item-2 miss, item-1 hit, item-4 miss (drops item-2), item-1 hit, item-2 miss (drops item-4).
      expect(two.neighbourCacheStats()).toEqual({ hits: 2, misses: 4, items: 2 });
      const none = await openHnswIndex(dir, { exactScanMaxRows: 0, neighbourCacheItems: 0 });
      const calls = await graphCalls(async () => {
        await none.similar('item-1', 10);
        return none.similar('item-1', 10);
      });
      expect(calls.beams).toHaveLength(2);
      expect(calls.result).toEqual(await none.search(vectorOf(1), 10));
      expect(none.neighbourCacheStats()).toEqual({ hits: 0, misses: 0, items: 0 });
    });

    it('answers [] for an unknown item and refuses a bad id or cache size', async () => {
      expect(await graph.similar('not-an-item', 10)).toEqual([]);
      await expect(graph.similar(7 as unknown as string, 10)).rejects.toThrow(VectorIndexArgumentError);
      await expect(openHnswIndex(dir, { neighbourCacheItems: -1 })).rejects.toThrow(/neighbourCacheItems/);
    });
  });

  describe('query-aware graph', () => {
    // Queries far from the items, each leaning towards several item clusters (what a two-tower's user vectors are).
    const gap = modalityGapVectors({ items: 10_000, queries: 400, dim: DIM, seed: 3 });
    const gapInput: IndexBuildInput = {
      ids: Array.from({ length: 10_000 }, (_, i) => `item-${i}`),
      vectors: gap.items,
      dim: DIM,
      metric: 'ip',
      version: 'gap',
      modelVersion: 'two-tower-test',
    };
    // The first 100 queries are measured; the others are the sample the space is fitted to.
    const sample = gap.queries.subarray(100 * DIM);
    const gapQuery = (q: number) => gap.queries.subarray(q * DIM, (q + 1) * DIM);
    const hnsw = { connectivity: 16, expansionAdd: 64, expansionSearch: 64 };
    const recall = async (store: HnswStore) => {
      let sum = 0;
      for (let q = 0; q < 100; q++) sum += overlap(await store.search(gapQuery(q), 50), exactIds(gapInput, gapQuery(q), 50)) / 100;
      return sum;
    };

    it('finds far queries’ best items that a graph over the items alone misses, with exact scores', async () => {
      await buildHnswIndex({ ...gapInput, version: 'plain' }, join(root, 'plain'), { hnsw, threads: 1 });
      await buildHnswIndex(gapInput, join(root, 'gap'), { hnsw, threads: 1, querySample: sample });
      const plain = await openHnswIndex(join(root, 'plain'), { exactScanMaxRows: 0, expansionPerResult: 1 });
      const aware = await openHnswIndex(join(root, 'gap'), { exactScanMaxRows: 0, expansionPerResult: 1 });
      const meta = JSON.parse(readFileSync(join(root, 'gap', 'meta.json'), 'utf8'));
      expect(meta.querySpace).toEqual({ ridge: 1e-3, queries: 300 });
      expect(meta.files[QUERY_TRANSFORM_FILE].bytes).toBe(DIM * DIM * 4);
      const awareRecall = await recall(aware);
      expect(awareRecall).toBeGreaterThanOrEqual(0.95);
      expect(awareRecall).toBeGreaterThan((await recall(plain)) + 0.05);
      const got = await aware.search(gapQuery(7), 30, { excludeIds: new Set(['item-1']) });
      expectBestFirst(got);
      for (const n of got) expect(n.score).toBe(scoreRow(gap.items, DIM, 'ip', gapQuery(7), rowOf(n.id)));
      // The beam grows with k: more results asked for search wider, so a wider beam is not worse.
      const wide = await openHnswIndex(join(root, 'gap'), { exactScanMaxRows: 0, expansionPerResult: 4 });
      expect(await recall(wide)).toBeGreaterThanOrEqual(awareRecall);
    });

    it('refuses a query sample for an l2 index, and a corrupt or missing transform file', async () => {
      await expect(
        buildHnswIndex({ ...gapInput, metric: 'l2', version: 'gap-l2' }, join(root, 'gap-l2'), { querySample: sample }),
      ).rejects.toThrow('querySample: the query-aware space serves ip and cos indexes');
      const copy = mkdtempSync(join(tmpdir(), 'vector-gap-'));
      try {
        cpSync(join(root, 'gap'), copy, { recursive: true });
        const bytes = readFileSync(join(copy, QUERY_TRANSFORM_FILE));
        bytes[10] = bytes[10]! ^ 0xff;
        writeFileSync(join(copy, QUERY_TRANSFORM_FILE), bytes);
        await expect(openHnswIndex(copy)).rejects.toThrow(`${QUERY_TRANSFORM_FILE}: checksum mismatch`);
        unlinkSync(join(copy, QUERY_TRANSFORM_FILE));
        await expect(openHnswIndex(copy)).rejects.toThrow(`${join(copy, QUERY_TRANSFORM_FILE)}: missing`);
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    });
  });

  describe('search workers', () => {
    // Plain options, exclusions and a category filter that over-fetch through the graph; a rare category and most
    // categories excluded, which the store scans exactly.
    const searches: [number, SearchOptions][] = [
      [40, {}],
      [40, { excludeIds: new Set(['item-1', 'item-11', 'item-21', 'not-an-item']) }],
      [30, { excludeCategories: ['c1', 'c2'] }],
      [100, { excludeCategories: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8'] }],
      [20, { includeCategories: ['rare'] }],
    ];
    const GRAPH_SEARCHES = 3;
    const answers = (store: HnswStore, q: number) => Promise.all(searches.map(([k, options]) => store.search(query(q), k, options)));

    it('answer as the store does on its own thread, many searches in flight at once, in the query-aware space too', async () => {
      const threaded = await openHnswIndex(dir, { exactScanMaxRows: 0, searchWorkers: 2 });
      try {
        const got = await Promise.all(Array.from({ length: 20 }, (_, q) => answers(threaded, q)));
        const want = await Promise.all(Array.from({ length: 20 }, (_, q) => answers(graph, q)));
        expect(got).toEqual(want);
        // Every graph search went to a thread and was scored there (3 of the 5 kinds; the exact scans stay on the store's thread).
        expect(threaded.searchWorkerStats()).toEqual({
          threads: 2,
          starting: 0,
          searched: 20 * GRAPH_SEARCHES,
          scored: 20 * GRAPH_SEARCHES,
          failed: 0,
          restarts: 0,
        });
      } finally {
        await threaded.close();
      }

      const gap = modalityGapVectors({ items: COUNT, queries: 300, dim: DIM, seed: 5 });
      const gapDir = join(root, 'workers-gap');
      await buildHnswIndex({ ...input, vectors: gap.items, payload: undefined, version: 'workers-gap' }, gapDir, {
        hnsw: { connectivity: 16, expansionAdd: 64, expansionSearch: 64 },
        querySample: gap.queries.subarray(50 * DIM),
      });
      const aware = await openHnswIndex(gapDir, { exactScanMaxRows: 0 });
      const awareThreaded = await openHnswIndex(gapDir, { exactScanMaxRows: 0, searchWorkers: 1 });
      try {
        for (let q = 0; q < 50; q++) {
          const vector = gap.queries.subarray(q * DIM, (q + 1) * DIM);
          expect(await awareThreaded.search(vector, 50)).toEqual(await aware.search(vector, 50));
        }
        expect(awareThreaded.searchWorkerStats()).toMatchObject({ searched: 50, scored: 50, failed: 0 });
      } finally {
        await Promise.all([aware.close(), awareThreaded.close()]);
      }
    });

    it("answer similar as the store does on its own thread, the cache's misses searched on a thread", async () => {
      // Each item's searches one after another (as the plain store's cache sees them), 20 items at once.
      const seeds = Array.from({ length: 20 }, (_, i) => `item-${i * 7}`);
      const similarAll = (store: HnswStore) =>
        Promise.all(
          seeds.map(async (id) => {
            const got: Neighbour[][] = [];
            for (const [k, options] of searches) got.push(await store.similar(id, k, options));
            got.push(await store.similar(id, 20));
            return got;
          }),
        );
      const plain = await openHnswIndex(dir, { exactScanMaxRows: 0 });
      const threaded = await openHnswIndex(dir, { exactScanMaxRows: 0, searchWorkers: 1 });
      try {
        const want = await similarAll(plain);
        expect(await similarAll(threaded)).toEqual(want);
        const { misses, hits } = threaded.neighbourCacheStats();
        expect({ misses, hits }).toEqual({ misses: plain.neighbourCacheStats().misses, hits: plain.neighbourCacheStats().hits });
        expect(misses).toBeGreaterThan(0);
        // Every miss, and the category-filtered search the cache does not answer, went to the thread and was scored there.
        const searched = misses + seeds.length;
        expect(threaded.searchWorkerStats()).toEqual({ threads: 1, starting: 0, searched, scored: searched, failed: 0, restarts: 0 });
        // Again: the cache answers, the same.
        expect(await similarAll(threaded)).toEqual(want);
        expect(threaded.searchWorkerStats()).toMatchObject({ searched: misses + 2 * seeds.length });
      } finally {
        await Promise.all([plain.close(), threaded.close()]);
      }
      await expect(threaded.similar('item-1', 5)).rejects.toBeInstanceOf(StoreClosedError);
    });

    it('answer the searches of a thread that dies here, and start it again', async () => {
      const threaded = await openHnswIndex(dir, { exactScanMaxRows: 0, searchWorkers: 1 });
      try {
        // Searches sent after the thread's crash began: it never answers them; each is answered here, the same.
        const crashing = threaded.crashSearchWorker();
        const inFlight = answers(threaded, 3);
        await crashing;
        expect(await inFlight).toEqual(await answers(graph, 3));
        const crashed = threaded.searchWorkerStats()!;
        expect(crashed).toEqual({ threads: 0, starting: 1, searched: 0, scored: 0, failed: GRAPH_SEARCHES, restarts: 1 });
        // No thread while the new one opens the graph: searched here.
        expect(await answers(threaded, 4)).toEqual(await answers(graph, 4));
        expect(threaded.searchWorkerStats()).toMatchObject({ searched: crashed.searched, failed: crashed.failed + GRAPH_SEARCHES });
        // The new thread takes the searches again.
        for (let tries = 0; threaded.searchWorkerStats()!.threads < 1 && tries < 400; tries++) await new Promise((r) => setTimeout(r, 25));
        expect(await answers(threaded, 5)).toEqual(await answers(graph, 5));
        expect(threaded.searchWorkerStats()).toMatchObject({
          threads: 1,
          starting: 0,
          searched: crashed.searched + GRAPH_SEARCHES,
          restarts: 1,
        });
      } finally {
        await threaded.close();
      }
      expect(threaded.searchWorkerStats()).toMatchObject({ threads: 0 });
      await expect(threaded.search(query(0), 5)).rejects.toBeInstanceOf(StoreClosedError);
    });

    it('end a thread still starting in place of a dead one when the store closes', async () => {
      const threaded = await openHnswIndex(dir, { exactScanMaxRows: 0, searchWorkers: 1 });
      await threaded.crashSearchWorker();
      expect(threaded.searchWorkerStats()).toMatchObject({ threads: 0, starting: 1 });
      await threaded.close();
      expect(threaded.searchWorkerStats()).toMatchObject({ threads: 0, starting: 0 });
    });

    it('refuses a count that is not a whole number >= 0, naming it', async () => {
      for (const searchWorkers of [-1, 1.5, Number.NaN])
        await expect(openHnswIndex(dir, { searchWorkers })).rejects.toThrow(
          `searchWorkers: ${searchWorkers} is not a non-negative integer`,
        );
    });
  });

  it('refuses calls once closed', async () => {
    const store = await openHnswIndex(dir);
    await store.close();
    await expect(store.search(query(0), 5)).rejects.toBeInstanceOf(StoreClosedError);
    await expect(store.getVectors(['item-1'])).rejects.toThrow('embedded index version 1 is closed');
  });
});

describe('graphFetch', () => {
  it('is exact with exclusions alone and keeps a margin over the pass rate of category filters', () => {
    expect(graphFetch(600, 20, 1_000_000, 1_000_000)).toBe(620);
    expect(graphFetch(600, 0, 1_000_000, 1_000_000)).toBe(600);
    // A tenth of the catalogue passes: 10x, and a quarter more.
    expect(graphFetch(100, 20, 100_000, 1_000_000)).toBe(1500);
    expect(graphFetch(900, 200, 1000, 1000)).toBe(1000);
    expect(graphFetch(100, 0, 100, 1000)).toBe(1000);
  });
});
