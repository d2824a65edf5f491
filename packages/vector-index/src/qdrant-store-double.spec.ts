/**
 * The Qdrant adapter's control logic against QdrantHttpDouble — an in-process HTTP TEST DOUBLE of the REST endpoints
 * the adapter calls, with injected faults. This is not the Qdrant path: qdrant-store.spec.ts runs the adapter against a
 * real server when QDRANT_URL is set. Searches in the double are exact, so recall is not measured here.
 */
import { type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { exactSearch } from './exact-search.js';
import { openStore, publishIndex, type IndexTarget } from './publish.js';
import { QdrantHttpDouble } from './qdrant-http-double.js';
import {
  listQdrantVersions,
  openQdrantStore,
  publishQdrantIndex,
  qdrantCollectionName,
  qdrantPointId,
  QDRANT_BATCH_INLINE_EXCLUSIONS,
  type QdrantConnection,
  type QdrantVersionMetadata,
} from './qdrant-store.js';
import { fitQuerySpace, graphItems } from './query-space.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type IndexBuildInput, type Metric } from './vector-store.js';

const DIM = 8;

function build(version: string, count = 300, metric: Metric = 'ip', dim = DIM): IndexBuildInput {
  const ids = Array.from({ length: count }, (_, i) => `v${version}-${i}`);
  return {
    ids,
    vectors: clusteredUnitVectors({ count, dim, clusters: 4, spread: 0.6, seed: 7 + version.length }),
    dim,
    metric,
    payload: ids.map((_, i) => ({ category: `c${i % 3}`, createdAtMs: 1_700_000_000_000 + i })),
    version,
    modelVersion: `model-${version}`,
  };
}

const query = (seed: number, dim = DIM) => clusteredUnitVectors({ count: 1, dim, clusters: 4, spread: 0.6, seed });

describe('Qdrant adapter against the HTTP test double (not Qdrant: control logic only)', () => {
  let double: QdrantHttpDouble;
  let connection: QdrantConnection;
  const base = 'items';
  const meta = (version: string) =>
    double.collections.get(qdrantCollectionName(base, version))?.metadata as unknown as QdrantVersionMetadata;

  beforeEach(async () => {
    double = await QdrantHttpDouble.start();
    connection = { url: double.url, retryBaseMs: 5 };
  });
  afterEach(() => double.close());

  it('publishes all of a version before marking it complete and moving the alias; reads the metadata back', async () => {
    const input = build('1');
    expect(await publishQdrantIndex(connection, base, input)).toEqual({
      version: '1',
      backend: 'qdrant',
      size: 300,
      dimension: DIM,
      metric: 'ip',
      modelVersion: 'model-1',
    });
    expect(meta('1')).toMatchObject({
      base,
      version: '1',
      model_version: 'model-1',
      metric: 'ip',
      dim: DIM,
      count: 300,
      state: 'complete',
    });
    expect(double.aliases.get(base)).toBe('items_v1');
    const paths = double.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`);
    const created = paths.indexOf('PUT /collections/items_v1');
    const lastUpsert = paths.lastIndexOf('PUT /collections/items_v1/points');
    const indexingOn = double.requests.findIndex((r) => r.method === 'PATCH' && r.body?.includes('"indexing_threshold":20000'));
    const completed = double.requests.findIndex((r) => r.method === 'PATCH' && r.body?.includes('"state":"complete"'));
    const swapped = paths.indexOf('POST /collections/aliases');
    // Created building with indexing off; the alias moves after the last upsert, indexing and the completed flag.
    expect(JSON.parse(double.requests[created]!.body!)).toMatchObject({
      optimizers_config: { indexing_threshold: 0 },
      metadata: { state: 'building' },
    });
    expect([created, lastUpsert, indexingOn, completed, swapped]).toEqual(
      [...[created, lastUpsert, indexingOn, completed, swapped]].sort((a, b) => a - b),
    );
    expect(created).toBeGreaterThan(0);
    expect(await listQdrantVersions(connection, base)).toEqual(['1']);

    const store = await openStore({ kind: 'qdrant', ...connection, collection: base }, { qdrant: { refreshIntervalMs: 0 } });
    expect(store.info()).toEqual({ version: '1', backend: 'qdrant', size: 300, dimension: DIM, metric: 'ip', modelVersion: 'model-1' });
    const got = await store.search(query(50), 10);
    const exact = exactSearch(input.vectors, DIM, 'ip', query(50), 10);
    expect(got.map((n) => n.id)).toEqual(exact.map((m) => input.ids[m.row]));
    got.forEach((n, i) => expect(n.score).toBeCloseTo(exact[i]!.score, 5));
    expect(got[0]!.payload).toEqual(input.payload![Number(got[0]!.id.split('-')[1])]);
    await store.close();
  });

  it.each(['cos', 'l2'] as Metric[])('returns %s scores higher-is-closer, equal to the exact search', async (metric) => {
    const input = build('1', 200, metric);
    // Unnormalised vectors, so cosine and inner product differ.
    input.vectors = input.vectors.map((x, i) => x * (1 + (Math.floor(i / DIM) % 5)));
    await publishQdrantIndex(connection, base, input);
    const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
    const q = query(51).map((x) => x * 3);
    const got = await store.search(q, 15);
    const exact = exactSearch(input.vectors, DIM, metric, q, 15);
    expect(got.map((n) => n.id)).toEqual(exact.map((m) => input.ids[m.row]));
    got.forEach((n, i) => expect(n.score).toBeCloseTo(exact[i]!.score, 4));
    await store.close();
  });

  it('refuses a server older than 1.16 with a clear message', async () => {
    double.version = '1.15.4';
    await expect(publishQdrantIndex(connection, base, build('1'))).rejects.toThrow(
      `Qdrant at ${double.url} is version 1.15.4; the vector index needs 1.16.0 or newer`,
    );
    await expect(openQdrantStore(connection, base)).rejects.toThrow(/is version 1\.15\.4/);
    expect(double.collections.size).toBe(0);
  });

  it('retries timed-out, 429 (after retry-after) and 5xx upserts and still publishes every point once', async () => {
    double.fault({ method: 'PUT', path: /\/points/, status: 503 });
    double.fault({ method: 'PUT', path: /\/points/, status: 429, retryAfterS: 0.05 });
    // Applied, but answered too late: the retry writes the same points again (ids derive from item ids).
    double.fault({ method: 'PUT', path: /\/points/, delayMs: 400, applyFirst: true });
    await publishQdrantIndex({ ...connection, timeouts: { upsert: 150 } }, base, build('1', 900), { batchSize: 300 });
    const upserts = double.requests.filter((r) => r.method === 'PUT' && r.path.includes('/points'));
    // The held request is answered after the client gave up on it (status 0 until then).
    expect(upserts.map((r) => r.status)).toEqual([503, 429, expect.any(Number), 200, 200, 200]);
    expect(double.collections.get('items_v1')!.points.size).toBe(900);
    expect(meta('1').state).toBe('complete');
  });

  it('aborts a publish that keeps failing: deletes the collection, leaves the alias and earlier versions alone', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    double.fault({ method: 'PUT', path: /\/points/, status: 500, times: 100 });
    await expect(publishQdrantIndex(connection, base, build('2', 900), { batchSize: 300 })).rejects.toThrow(
      /PUT \/collections\/items_v2\/points\?wait=true: 500/,
    );
    expect([...double.collections.keys()]).toEqual(['items_v1']);
    expect(double.aliases.get(base)).toBe('items_v1');
    expect(await listQdrantVersions(connection, base)).toEqual(['1']);
    // A failing count check aborts too.
    double.clearFaults();
    double.fault({ method: 'POST', path: /\/points\/count/, status: 500, times: 100 });
    await expect(publishQdrantIndex(connection, base, build('2'), { retain: 1 })).rejects.toThrow(/points\/count/);
    expect([...double.collections.keys()]).toEqual(['items_v1']);
    double.clearFaults();
    await publishQdrantIndex(connection, base, build('2'), { retain: 1, pinGraceMs: 0 });
    expect(await listQdrantVersions(connection, base)).toEqual(['2']);
  });

  it('moves the alias only once the collection is green and indexed; gives up (and cleans up) after timeouts.indexing', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    double.indexingMs = 700;
    let sawUnindexedServing = false;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const c = double.collections.get('items_v2');
        if (c && double.aliases.get(base) === 'items_v2' && Date.now() - (c.indexingSince ?? 0) < double.indexingMs)
          sawUnindexedServing = true;
        await sleep(5);
      }
    })();
    await publishQdrantIndex(connection, base, build('2', 400), { indexingThresholdKb: 1 });
    polling = false;
    await poll;
    expect(sawUnindexedServing).toBe(false);
    expect(double.aliases.get(base)).toBe('items_v2');
    const polls = double.requests.filter((r) => r.method === 'GET' && r.path === '/collections/items_v2');
    expect(polls.length).toBeGreaterThan(2);

    double.indexingMs = 5_000;
    await expect(
      publishQdrantIndex({ ...connection, timeouts: { indexing: 300 } }, base, build('3', 400), { indexingThresholdKb: 1 }),
    ).rejects.toThrow(/items_v3: not indexed within 300 ms \(timeouts\.indexing\): status yellow/);
    expect(double.collections.has('items_v3')).toBe(false);
    expect(double.aliases.get(base)).toBe('items_v2');
  });

  it('sizes upserts by bytes: 4096-dim points stay under the budget (and under the server limit)', async () => {
    double.maxBodyBytes = 4 * 1024 * 1024;
    const input = build('1', 160, 'ip', 4096);
    await publishQdrantIndex(connection, base, input, { batchBytes: 4 * 1024 * 1024 });
    const upserts = double.requests.filter((r) => r.method === 'PUT' && r.path.includes('/points'));
    expect(upserts.length).toBeGreaterThan(1);
    expect(upserts.every((r) => r.status === 200 && r.bytes <= 4 * 1024 * 1024)).toBe(true);
    const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
    const [v] = await store.getVectors(['v1-159']);
    // Float32 values go over the wire as the shortest decimal that reads back as the same float32.
    expect(Array.from(v!)).toEqual(Array.from(input.vectors.subarray(159 * 4096, 160 * 4096)));
    await store.close();
  });

  it('keeps the previous versions a service may still serve: leased pins and the grace after the alias left them', async () => {
    const target: IndexTarget = { kind: 'qdrant', ...connection, collection: base };
    await publishIndex(target, build('1'), { retain: 1 });
    const pinned = await openStore(target, { qdrant: { version: '1', leaseRenewMs: 20 } });
    await publishIndex(target, build('2'), { retain: 1 });
    await publishIndex(target, build('3'), { retain: 1 });
    // Two quick publishes: 1 (pinned, and left by the alias moments ago) and 2 (left moments ago) are kept.
    expect(await listQdrantVersions(connection, base)).toEqual(['1', '2', '3']);
    expect((await pinned.search(query(52), 5)).every((n) => n.id.startsWith('v1-'))).toBe(true);
    expect(Object.keys(meta('1')).some((k) => k.startsWith('pin:'))).toBe(true);

    // Long after: the grace has run out for 1 and 2, but 1's lease is renewed by the open store.
    for (const v of ['1', '2']) meta(v).superseded_at_ms = Date.now() - 3_600_000;
    await publishIndex(target, build('4'), { retain: 1, pinGraceMs: 60_000 });
    expect(await listQdrantVersions(connection, base)).toEqual(['1', '3', '4']);
    expect(await pinned.search(query(52), 5)).toHaveLength(5);

    await pinned.close();
    expect(Object.keys(meta('1')).some((k) => k.startsWith('pin:'))).toBe(false);
    meta('3').superseded_at_ms = Date.now() - 3_600_000;
    await publishIndex(target, build('5'), { retain: 1, pinGraceMs: 60_000 });
    expect(await listQdrantVersions(connection, base)).toEqual(['4', '5']);
  });

  it('gives up its lease on close even while a renewal is still on the wire (the renewal cannot write the pin back)', async () => {
    const target: IndexTarget = { kind: 'qdrant', ...connection, collection: base };
    await publishIndex(target, build('1'), { retain: 1 });
    // The first renewal is held 300 ms by the server, then applied: close() comes while it is in flight.
    double.fault({ method: 'PATCH', path: /^\/collections\/items_v1$/, delayMs: 300 });
    const pinned = await openStore(target, { qdrant: { version: '1', leaseRenewMs: 60_000 } });
    await pinned.close();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(Object.keys(meta('1')).filter((k) => k.startsWith('pin:'))).toEqual([]);
    const patches = double.requests.filter((r) => r.method === 'PATCH' && r.body?.includes('"pin:'));
    expect(patches.map((r) => (r.body!.includes(':null') ? 'release' : 'renew'))).toEqual(['renew', 'release']);
  });

  it("counts only the base's own collections: another base sharing the prefix and foreign collections are left alone", async () => {
    await publishQdrantIndex(connection, 'items_vx', build('1'));
    double.collections.set('items_v7', { ...double.collections.get('items_vx_v1')!, metadata: { note: 'someone else' } });
    await publishQdrantIndex(connection, base, build('1'), { retain: 1 });
    await publishQdrantIndex(connection, base, build('2'), { retain: 1, pinGraceMs: 0 });
    expect(await listQdrantVersions(connection, base)).toEqual(['2']);
    expect(await listQdrantVersions(connection, 'items_vx')).toEqual(['1']);
    expect(double.collections.has('items_vx_v1')).toBe(true);
    expect(double.collections.has('items_v7')).toBe(true);
    await expect(publishQdrantIndex(connection, base, build('7'))).rejects.toThrow(
      'collection items_v7 exists but was not published for items',
    );
  });

  it('never drops a complete version on republish; drops an abandoned build, refuses one still being built', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    await publishQdrantIndex(connection, base, build('2'));
    const pinned = await openQdrantStore(connection, base, { version: '1' });
    await expect(publishQdrantIndex(connection, base, build('1'))).rejects.toThrow(
      '"1" does not sort after the latest complete version "2"',
    );
    await expect(publishQdrantIndex(connection, base, build('2'))).rejects.toThrow(/does not sort after/);
    expect(await pinned.search(query(53), 3)).toHaveLength(3);
    await pinned.close();

    // A build left behind (its publisher died): not listed, refused when opened, rebuilt once stale.
    double.collections.set('items_v3', {
      ...double.collections.get('items_v2')!,
      points: new Map(),
      metadata: { ...meta('2'), version: '3', state: 'building', heartbeat_ms: Date.now() },
    });
    expect(await listQdrantVersions(connection, base)).toEqual(['1', '2']);
    await expect(openQdrantStore(connection, base, { version: '3' })).rejects.toThrow('items_v3 (version 3) is not complete');
    await expect(publishQdrantIndex(connection, base, build('3'))).rejects.toThrow(/items_v3 is being built by another publisher/);
    meta('3').heartbeat_ms = Date.now() - 3_600_000;
    await publishQdrantIndex(connection, base, build('3'));
    expect(meta('3').state).toBe('complete');
  });

  it('refuses to open a version whose points do not match its recorded count', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    double.collections.get('items_v1')!.points.delete(qdrantPointId('v1-0'));
    await expect(openQdrantStore(connection, base, { version: '1' })).rejects.toThrow(
      'items_v1 holds 299 points, its metadata records 300',
    );
  });

  it('ends with the alias on the newest version when two publishers swap concurrently', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    // The first alias change is held: the other publisher swaps in between.
    double.fault({ method: 'POST', path: /^\/collections\/aliases/, delayMs: 300 });
    const results = await Promise.allSettled([
      publishQdrantIndex(connection, base, build('2', 300)),
      publishQdrantIndex(connection, base, build('3', 50)),
    ]);
    expect(double.aliases.get(base)).toBe('items_v3');
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/newer than|does not sort after|being built/);
    const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
    expect(store.info().version).toBe('3');
    await store.close();
  });

  it('passes per-operation timeouts through publishIndex and openStore', async () => {
    const target: IndexTarget = { kind: 'qdrant', ...connection, retries: 1, timeouts: { upsert: 100, search: 100 }, collection: base };
    double.fault({ method: 'PUT', path: /\/points/, delayMs: 400, times: 2 });
    await expect(publishIndex(target, build('1'))).rejects.toThrow('no answer within 100 ms (timeouts.upsert)');
    expect(double.collections.size).toBe(0);
    await publishIndex(target, build('1'));
    const store = await openStore(target, { qdrant: { refreshIntervalMs: 0 } });
    double.fault({ method: 'POST', path: /\/points\/query/, delayMs: 400 });
    await expect(store.search(query(54), 5)).rejects.toThrow('no answer within 100 ms (timeouts.search)');
    expect(await store.search(query(54), 5)).toHaveLength(5);
    await store.close();
  });

  it('releases its connections on close', async () => {
    await publishQdrantIndex(connection, base, build('1'));
    const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
    await store.search(query(55), 5);
    const server = (double as unknown as { server: Server }).server;
    const open = () => new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
    expect(await open()).toBeGreaterThan(0);
    await store.close();
    for (let i = 0; i < 50 && (await open()) > 0; i++) await sleep(10);
    expect(await open()).toBe(0);
    await expect(store.search(query(55), 5)).rejects.toThrow(/closed/);
  });

  it('does not repeat a long exclusion list in every search of a batch, and still answers like single searches', async () => {
    const input = build('1', 500);
    await publishQdrantIndex(connection, base, input);
    const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
    const vectors = [56, 57, 58, 59].map((s) => query(s));
    // The nearest items of the first query are excluded, so its first answer comes back short and is asked again.
    const nearest = exactSearch(input.vectors, DIM, 'ip', vectors[0]!, 40).map((m) => input.ids[m.row]!);
    const excludeIds = new Set([...nearest, ...input.ids.slice(200, 200 + QDRANT_BATCH_INLINE_EXCLUSIONS)]);
    const options = { excludeIds, excludeCategories: ['c2'] };
    const before = double.requests.length;
    const batch = await store.searchBatch(vectors, 10, options);
    const batchRequests = double.requests.slice(before);
    const singles = await Promise.all(vectors.map((v) => store.search(v, 10, options)));
    expect(batch).toEqual(singles);
    expect(batch.every((list) => list.length === 10 && list.every((n) => !excludeIds.has(n.id) && n.payload?.category !== 'c2'))).toBe(
      true,
    );
    const oneList = JSON.stringify([...excludeIds].map(qdrantPointId)).length;
    expect(batchRequests.length).toBe(2);
    // First request: no list at all; second: the list once, for the one search left short.
    expect(batchRequests[0]!.bytes).toBeLessThan(oneList);
    expect(batchRequests[1]!.bytes).toBeLessThan(2 * oneList);
    await store.close();
  });

  it.each(['ip', 'cos'] as Metric[])(
    'with a query sample (%s) stores the query-aware vectors beside the raw ones and re-scores candidates exactly',
    async (metric) => {
      const input = build('1', 400, metric);
      const sample = clusteredUnitVectors({ count: 256, dim: DIM, clusters: 3, spread: 0.5, seed: 99 });
      await publishQdrantIndex(connection, base, input, { querySample: sample });
      const c = double.collections.get('items_v1')!;
      expect(c.vectors.graph).toEqual({ size: DIM + 1, distance: 'Euclid' });
      expect(c.vectors.raw).toMatchObject({ size: DIM, hnsw_config: { m: 0 } });
      const space = fitQuerySpace(sample, DIM);
      const rows = graphItems(space, input.vectors, metric === 'cos');
      const stored = c.points.get(qdrantPointId('v1-17'))!.vector.graph!;
      expect(stored).toEqual(Array.from(rows.subarray(17 * (DIM + 1), 18 * (DIM + 1))));

      const store = await openQdrantStore(connection, base, { refreshIntervalMs: 0 });
      const before = double.requests.length;
      const q = clusteredUnitVectors({ count: 1, dim: DIM, clusters: 3, spread: 0.5, seed: 100 });
      const got = await store.search(q, 20, { excludeCategories: ['c1'] });
      const exact = exactSearch(input.vectors, DIM, metric, q, 20, { accept: (row) => row % 3 !== 1 });
      expect(got.map((n) => n.id)).toEqual(exact.map((m) => input.ids[m.row]));
      got.forEach((n, i) => expect(n.score).toBeCloseTo(exact[i]!.score, 5));
      // One request: graph candidates (2 per result) from the transformed query, re-scored by the raw vector.
      expect(double.requests.length).toBe(before + 1);
      const sent = JSON.parse(double.requests[before]!.body!);
      expect(sent).toMatchObject({ using: 'raw', limit: 20, prefetch: { using: 'graph', limit: 40 } });
      expect(sent.query).toEqual(Array.from(q));
      expect(sent.prefetch.query).toHaveLength(DIM + 1);
      expect(sent.prefetch.filter).toEqual({ must_not: [{ key: 'category', match: { any: ['c1'] } }] });
      const [v] = await store.getVectors(['v1-17']);
      expect(v).toHaveLength(DIM);
      await store.close();
      await expect(publishQdrantIndex(connection, base, { ...build('2', 10, 'l2') }, { querySample: sample })).rejects.toThrow(
        /querySample/,
      );
    },
  );
});
