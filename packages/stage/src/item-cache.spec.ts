import { randomUUID } from 'node:crypto';
import { toBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { type TrainedModels, trainedModels } from '@recsys/testing';
import { type InputLayout, inputLayout } from '@recsys/model-format';
import type { ItemBytesReader } from '@recsys/serving';
import { itemRecords, loadFeatures } from '@recsys/offline';
import { readItemRows } from './feature-reader.js';
import { FeedAssembler } from '@recsys/serving';
import { EncodedItemReader, ItemCache, type ItemCacheSettings } from '@recsys/serving';
import { loadModelVersion } from '@recsys/model-format';

describe('ItemCache', () => {
  it('drops the least recently used item first and never serves an expired one', () => {
    const cache = new ItemCache<string>(3);
    cache.set('a', 'A', true, 100, 0);
    cache.set('b', 'B', true, 100, 0);
    cache.set('c', 'C', false, 10, 0);
    expect(cache.get('a', 5)?.value).toBe('A'); // a is now the most recently used
    cache.set('d', 'D', true, 100, 5);
    expect(cache.size).toBe(3);
    expect(cache.get('b', 5)).toBeUndefined();
    expect(cache.get('c', 9)).toMatchObject({ value: 'C', found: false });
    // Expired at now >= stored + ttl, and forgotten.
    expect(cache.get('c', 10)).toBeUndefined();
    expect(cache.size).toBe(2);
    expect(cache.get('a', 99)?.value).toBe('A');
    expect(cache.get('a', 100)).toBeUndefined();
    expect(() => new ItemCache(0)).toThrow(RangeError);
  });

  it('keeps an item used at least every maxItems / 2 insertions, however many others pass through', () => {
    const cache = new ItemCache<number>(10);
    cache.set('hot', 0, true, 1e9, 0);
    for (let k = 0; k < 1000; k++) {
      cache.set(`cold-${k}`, k, true, 1e9, 0);
      if (k % 5 === 0) expect(cache.get('hot', 0)?.value).toBe(0);
    }
    // The hot item and the nine latest others.
    expect(cache.size).toBe(10);
    expect(cache.get('hot', 0)?.value).toBe(0);
    expect(cache.get('cold-990', 0)).toBeUndefined();
    expect(cache.get('cold-991', 0)?.value).toBe(991);
  });
});

/** The feature service's BatchGetItemFeatures answer as the bytes it sent (re-encoded from the typed client), counting calls. */
class CountingReader implements ItemBytesReader {
  calls: string[][] = [];
  constructor(private readonly client: ServiceClient<typeof features.FeatureService.method>) {}
  async batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer> {
    this.calls.push([...request.itemIds]);
    const answer = await this.client.batchGetItemFeatures(request);
    return Buffer.from(toBinary(features.BatchGetItemFeaturesResponseSchema, answer));
  }
}

describe('EncodedItemReader (feature service on Redis, the trained DLRM layout)', () => {
  let models: TrainedModels;
  let service: RunningGrpcService;
  let client: ServiceClient<typeof features.FeatureService.method>;
  let layout: InputLayout;
  let now = 0;
  const clock = () => now;

  beforeAll(async () => {
    models = await trainedModels();
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
    service = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `ic${randomUUID().slice(0, 8)}:`, LOG_LEVEL: 'silent' }),
      createLogger('features', 'silent'),
    );
    client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 10_000 });
    expect((await loadFeatures(client, models.setup, { history: 'none' })).rejected).toEqual([]);
    layout = inputLayout((await loadModelVersion(models.root, 'dlrm', models.version)).manifest.featureSpecs.model!);
  }, 180_000);

  afterAll(async () => {
    client?.close();
    await service?.close();
  });

  const settings = (over: Partial<ItemCacheSettings> = {}) => ({ maxItems: 1000, ttlMs: 60_000, missingTtlMs: 5_000, now: clock, ...over });

  /** What the uncached path feeds for these ids: protobuf-es rows (readItemRows) encoded one by one. */
  async function uncached(ids: string[]) {
    const assembler = FeedAssembler.of(layout);
    return (await readItemRows(client, ids)).rows.map((row) => Array.from(assembler.encodeItem(row)));
  }

  it('serves items read within the TTL from memory, equal to the uncached encoding, and reads only the rest', async () => {
    const reads: number[][] = [];
    const reader = new CountingReader(client);
    const items = new EncodedItemReader(FeedAssembler.of(layout), {
      ...settings(),
      observer: { itemsRead: (hits, misses, cached) => reads.push([hits, misses, cached]) },
    });
    const ids = models.setup.dataset.items.ids;
    const first = ids.slice(0, 40);
    const second = [...ids.slice(20, 40), 'never-stored', ...ids.slice(40, 60)];
    now = 1000;
    const a = await items.read(reader, first);
    const b = await items.read(reader, second);
    expect(a.items.map((item) => Array.from(item))).toEqual(await uncached(first));
    expect(b.items.map((item) => Array.from(item))).toEqual(await uncached(second));
    expect(a.missing).toEqual([]);
    expect(b.missing).toEqual(['never-stored']);
    // The second read asked only for what the first did not bring.
    expect(reader.calls).toEqual([first, ['never-stored', ...ids.slice(40, 60)]]);
    expect(reads).toEqual([
      [0, 40, 40],
      [20, 21, 61],
    ]);
    // Everything is cached now, the unknown item too (for missingTtlMs): no call at all.
    const c = await items.read(reader, second);
    expect(reader.calls).toHaveLength(2);
    expect(c.missing).toEqual(['never-stored']);
    expect(c.items.map((item) => Array.from(item))).toEqual(await uncached(second));
  });

  it('sees an updated item once the TTL has passed, and a newly stored one once the missing TTL has', async () => {
    const reader = new CountingReader(client);
    const items = new EncodedItemReader(FeedAssembler.of(layout), settings({ ttlMs: 60_000, missingTtlMs: 5_000 }));
    const record = itemRecords(models.setup)[3]!;
    const changing = `changing-${randomUUID()}`;
    const late = `late-${randomUUID()}`;
    await client.upsertItems({ items: [{ ...record, itemId: changing }] });
    now = 10_000;
    const before = await items.read(reader, [changing, late]);
    expect(before.missing).toEqual([late]);

    // Changed in the feature service: a new category and tags.
    await client.upsertItems({
      items: [
        { itemId: changing, category: 'a-new-category', features: { values: {} } },
        { ...record, itemId: late },
      ],
    });
    const [fresh, stored] = await uncached([changing, late]);
    expect(fresh).not.toEqual(Array.from(before.items[0]!));
    now = 10_000 + 4_999;
    const stale = await items.read(reader, [changing, late]);
    expect(stale.items.map((item) => Array.from(item))).toEqual(before.items.map((item) => Array.from(item)));
    expect(stale.missing).toEqual([late]);
    now = 10_000 + 5_000;
    const found = await items.read(reader, [changing, late]);
    expect(found.missing).toEqual([]);
    expect(Array.from(found.items[1]!)).toEqual(stored);
    expect(Array.from(found.items[0]!)).toEqual(Array.from(before.items[0]!));
    now = 10_000 + 60_000;
    const updated = await items.read(reader, [changing, late]);
    expect(Array.from(updated.items[0]!)).toEqual(fresh);
    expect(reader.calls).toEqual([[changing, late], [late], [changing]]);
  });

  it('asks for every item every time when the cache is off, and for unknown items every time when missingTtlMs is 0', async () => {
    const ids = [...models.setup.dataset.items.ids.slice(0, 5), 'unknown-item'];
    const off = new CountingReader(client);
    const noCache = new EncodedItemReader(FeedAssembler.of(layout), settings({ maxItems: 0 }));
    await noCache.read(off, ids);
    await noCache.read(off, ids);
    expect(off.calls).toEqual([ids, ids]);
    expect(noCache.cached).toBe(0);

    const reader = new CountingReader(client);
    const noMissing = new EncodedItemReader(FeedAssembler.of(layout), settings({ missingTtlMs: 0 }));
    const a = await noMissing.read(reader, ids);
    const b = await noMissing.read(reader, ids);
    expect(reader.calls).toEqual([ids, ['unknown-item']]);
    expect([a.missing, b.missing]).toEqual([['unknown-item'], ['unknown-item']]);
  });
});
