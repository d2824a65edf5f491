import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { exactSearch } from './exact-search.js';
import { openStore, publishIndex, type IndexTarget, type ServingStore } from './publish.js';
import {
  listQdrantVersions,
  openQdrantStore,
  qdrantClient,
  qdrantCollectionName,
  qdrantFilter,
  qdrantItemPayload,
  qdrantPointId,
} from './qdrant-store.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type IndexBuildInput } from './vector-store.js';

describe('Qdrant point ids and filters', () => {
  it('maps an item id to the same version-5 UUID in every process, distinct ids to distinct UUIDs', () => {
    const id = qdrantPointId('item-42');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(qdrantPointId('item-42')).toBe(id);
    const many = new Set(Array.from({ length: 10_000 }, (_, i) => qdrantPointId(`item-${i}`)));
    expect(many.size).toBe(10_000);
  });

  it('reads an item payload from a point payload, leaving out what is missing or malformed', () => {
    expect(qdrantItemPayload({ item_id: 'a', category: 'c1', created_at_ms: 5 })).toEqual({ category: 'c1', createdAtMs: 5 });
    expect(qdrantItemPayload({ item_id: 'a', category: 3, created_at_ms: 'x' })).toEqual({});
    expect(qdrantItemPayload(null)).toEqual({});
  });

  it('turns search options into one Qdrant filter', () => {
    expect(qdrantFilter({})).toBeUndefined();
    expect(qdrantFilter({ includeCategories: [], excludeIds: new Set() })).toBeUndefined();
    expect(qdrantFilter({ includeCategories: ['a', 'b'], excludeCategories: ['c'], excludeIds: new Set(['x']) })).toEqual({
      must: [{ key: 'category', match: { any: ['a', 'b'] } }],
      must_not: [{ key: 'category', match: { any: ['c'] } }, { has_id: [qdrantPointId('x')] }],
    });
  });
});

const QDRANT_URL = process.env.QDRANT_URL;
const SKIPPED = 'Qdrant adapter (skipped: QDRANT_URL is not set; no Qdrant server can run on this machine)';
if (QDRANT_URL === undefined)
  console.warn(`${SKIPPED}. Set QDRANT_URL (and QDRANT_API_KEY if needed) to run these tests against a server.`);
const describeWithServer = QDRANT_URL === undefined ? describe.skip : describe;

const DIM = 16;
const COUNT = 2000;

/** Items in 8 clusters; 'rare' holds 30 of them, every 40th has no category. */
function version(name: string, count = COUNT): IndexBuildInput {
  const ids = Array.from({ length: count }, (_, i) => `v${name}-${i}`);
  return {
    ids,
    vectors: clusteredUnitVectors({ count, dim: DIM, clusters: 8, spread: 0.6, seed: 31 }),
    dim: DIM,
    metric: 'ip',
    payload: ids.map((_, i) => (i % 40 === 1 ? {} : { category: i % 67 === 0 ? 'rare' : `c${i % 5}`, createdAtMs: 1_700_000_000_000 + i })),
    version: name,
    modelVersion: `model-${name}`,
  };
}

describeWithServer(QDRANT_URL === undefined ? SKIPPED : `Qdrant adapter against ${QDRANT_URL}`, () => {
  const connection = { url: QDRANT_URL ?? '', ...(process.env.QDRANT_API_KEY ? { apiKey: process.env.QDRANT_API_KEY } : {}) };
  const base = `recsys_test_${randomBytes(4).toString('hex')}`;
  const target: IndexTarget = { kind: 'qdrant', ...connection, collection: base };
  const client = qdrantClient(connection);
  const first = version('1');
  const queries = clusteredUnitVectors({ count: 10, dim: DIM, clusters: 8, spread: 0.6, seed: 32 });
  const query = (q: number) => queries.subarray(q * DIM, (q + 1) * DIM);
  const row = (id: string) => Number(id.split('-')[1]);
  let store: ServingStore;

  beforeAll(async () => {
    await publishIndex(target, first, { batchSize: 300 });
    store = await openStore(target, { qdrant: { refreshIntervalMs: 0 } });
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    const { aliases } = await client.getAliases();
    if (aliases.some((a) => a.alias_name === base))
      await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: base } }] });
    for (const v of await listQdrantVersions(connection, base)) await client.deleteCollection(qdrantCollectionName(base, v));
  });

  it('creates the version collection with the model dimension, Dot distance, payload indexes and every point, behind the alias', async () => {
    const collection = await client.getCollection(qdrantCollectionName(base, '1'));
    expect(collection.config.params.vectors).toMatchObject({ size: DIM, distance: 'Dot' });
    expect(collection.payload_schema.category?.data_type).toBe('keyword');
    expect(collection.payload_schema.created_at_ms?.data_type).toBe('integer');
    expect((await client.count(qdrantCollectionName(base, '1'), { exact: true })).count).toBe(COUNT);
    const { aliases } = await client.getAliases();
    expect(aliases.find((a) => a.alias_name === base)?.collection_name).toBe(qdrantCollectionName(base, '1'));
    expect(store.info()).toEqual({ version: '1', backend: 'qdrant', size: COUNT, dimension: DIM, metric: 'ip', modelVersion: 'model-1' });
    const [point] = await client.retrieve(base, { ids: [qdrantPointId('v1-5')], with_payload: true });
    expect(point?.payload).toEqual({ item_id: 'v1-5', category: 'c0', created_at_ms: 1_700_000_000_005 });
  });

  it('searches like the exact search, with the same scores', async () => {
    for (let q = 0; q < 10; q++) {
      const got = await store.search(query(q), 20);
      const exact = exactSearch(first.vectors, DIM, 'ip', query(q), 20);
      expect(got).toHaveLength(20);
      const wanted = new Set(exact.map((m) => first.ids[m.row]));
      expect(got.filter((n) => wanted.has(n.id)).length).toBeGreaterThanOrEqual(18);
      expect(got[0]!.score).toBeCloseTo(exact[0]!.score, 4);
    }
  });

  it('filters excluded ids and categories and still returns k', async () => {
    const top = await store.search(query(0), 30);
    const excludeIds = new Set(top.map((n) => n.id));
    const rest = await store.search(query(0), 30, { excludeIds });
    expect(rest).toHaveLength(30);
    expect(rest.some((n) => excludeIds.has(n.id))).toBe(false);

    const rare = await store.search(query(1), 10, { includeCategories: ['rare'] });
    expect(rare).toHaveLength(10);
    expect(rare.every((n) => row(n.id) % 67 === 0 && row(n.id) % 40 !== 1)).toBe(true);
    const allRare = first.ids.filter((_, i) => i % 67 === 0 && i % 40 !== 1);
    expect((await store.search(query(1), 100, { includeCategories: ['rare'] })).map((n) => n.id).sort()).toEqual([...allRare].sort());

    const notC = await store.search(query(2), 50, { excludeCategories: ['c0', 'c1', 'c2', 'c3'], excludeIds: new Set(allRare) });
    expect(notC).toHaveLength(50);
    expect(notC.every((n) => row(n.id) % 5 === 4 || row(n.id) % 40 === 1)).toBe(true);
  });

  it('returns payloads with every result and by id, and answers a batch as single searches', async () => {
    const got = await store.search(query(4), 20);
    for (const n of got) {
      const i = row(n.id);
      expect(n.payload).toEqual(i % 40 === 1 ? {} : { category: i % 67 === 0 ? 'rare' : `c${i % 5}`, createdAtMs: 1_700_000_000_000 + i });
    }
    expect(await store.payloads(['v1-5', 'nope', 'v1-41'])).toEqual([{ category: 'c0', createdAtMs: 1_700_000_000_005 }, undefined, {}]);
    const vectors = [5, 6, 7].map(query);
    const options = { excludeCategories: ['c1'] };
    const batch = await store.searchBatch(vectors, 15, options);
    expect(batch).toEqual(await Promise.all(vectors.map((v) => store.search(v, 15, options))));
  });

  it('returns vectors by item id, undefined for unknown ids', async () => {
    const [a, unknown, b] = await store.getVectors(['v1-3', 'nope', 'v1-1999']);
    expect(unknown).toBeUndefined();
    expect(Array.from(a!)).toEqual(Array.from(first.vectors.subarray(3 * DIM, 4 * DIM)).map((x) => expect.closeTo(x, 6)));
    expect(Array.from(b!)).toEqual(Array.from(first.vectors.subarray(1999 * DIM, 2000 * DIM)).map((x) => expect.closeTo(x, 6)));
  });

  it('swaps the alias under concurrent searches with no failed request, and keeps `retain` versions', async () => {
    let stop = false;
    let failures = 0;
    const seen = new Set<string>();
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const results = await store.search(query(3), 10);
          if (results.length !== 10) failures++;
          else seen.add(results[0]!.id.split('-')[0]!);
        } catch {
          failures++;
        }
      }
    });
    await sleep(100);
    await publishIndex(target, version('2', 1500), { batchSize: 500, retain: 2 });
    await sleep(100);
    await publishIndex(target, version('3', 1000), { batchSize: 500, retain: 2 });
    await sleep(200);
    stop = true;
    await Promise.all(clients);
    expect(failures).toBe(0);
    expect(seen.has('v1')).toBe(true);
    expect(seen.has('v3')).toBe(true);
    expect(await store.reload()).toMatchObject({ version: '3', size: 1000, modelVersion: 'model-3' });
    expect(await listQdrantVersions(connection, base)).toEqual(['2', '3']);
    // A pinned version answers from its own collection, whatever the alias points at.
    const pinned = await openQdrantStore(connection, base, { version: '2' });
    expect(pinned.info()).toMatchObject({ version: '2', size: 1500, modelVersion: 'model-2' });
    expect((await pinned.search(query(3), 10)).every((n) => n.id.startsWith('v2-'))).toBe(true);
    await pinned.close();
    await expect(openQdrantStore(connection, base, { version: '1' })).rejects.toThrow(`${qdrantCollectionName(base, '1')} (version 1`);
    await expect(publishIndex(target, version('3', 10))).rejects.toThrow(/already serving/);
  }, 120_000);
});
