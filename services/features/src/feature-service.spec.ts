import { status } from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { InvalidArgumentError, UnavailableError } from '@recsys/service-kit';
import { loadFeaturesConfig } from './config.js';
import { FeatureService } from './feature-service.js';
import { MemoryFeatureStore, StoreUnavailableError, type FeatureStore } from './store/index.js';

const NOW = Date.UTC(2026, 10, 1);
const config = loadFeaturesConfig({ MAX_BATCH_SIZE: '50', POPULAR_MAX_LIMIT: '20', POPULAR_DEFAULT_LIMIT: '3' });

function setup() {
  const store = new MemoryFeatureStore({ ...config, clock: () => NOW });
  return { store, service: new FeatureService(store, config, () => NOW) };
}

async function seed(service: FeatureService) {
  await service.upsertItems(
    create(features.UpsertItemsRequestSchema, {
      items: ['a', 'b', 'c', 'd', 'e'].map((id, k) => ({ itemId: id, category: k % 2 ? 'odd' : 'even' })),
    }),
  );
  // Popularity: e > d > c > b > a.
  const events = ['a', 'b', 'c', 'd', 'e'].flatMap((id, k) =>
    Array.from({ length: k + 1 }, (_, n) => ({ eventId: `${id}${n}`, userId: 'u', itemId: id, eventType: common.EventType.VIEW })),
  );
  await service.recordFeedback(create(features.RecordFeedbackRequestSchema, { events }));
}

describe('FeatureService', () => {
  it('answers a batch read in request order, with missing ids, from the stored bytes', async () => {
    const { service } = setup();
    await seed(service);
    const response = (await service.batchGetItemFeatures({ itemIds: ['c', 'x', 'a'] } as never)).decode();
    expect(response.items.map((r) => [r.found, r.item?.itemId, r.item?.category])).toEqual([
      [true, 'c', 'even'],
      [false, 'x', ''],
      [true, 'a', 'even'],
    ]);
    expect(response.missingIds).toEqual(['x']);
    expect((await service.batchGetItemFeatures({ itemIds: [] } as never)).decode().items).toEqual([]);
  });

  it('scans every item a page at a time from the stored bytes, and refuses a bad limit or cursor', async () => {
    const { service } = setup();
    await seed(service);
    const first = (await service.scanItems({ cursor: '', limit: 2 } as never)).decode();
    expect(first.items.map((i) => [i.itemId, i.category])).toEqual([
      ['a', 'even'],
      ['b', 'odd'],
    ]);
    const ids = first.items.map((i) => i.itemId);
    let cursor = first.nextCursor;
    while (cursor !== '') {
      const page = (await service.scanItems({ cursor, limit: 2 } as never)).decode();
      ids.push(...page.items.map((i) => i.itemId));
      cursor = page.nextCursor;
    }
    expect(ids).toEqual(['a', 'b', 'c', 'd', 'e']);
    // 0: 1000 rows, capped by MAX_BATCH_SIZE.
    expect((await service.scanItems({ cursor: '', limit: 0 } as never)).decode().items).toHaveLength(5);
    await expect(service.scanItems({ cursor: '', limit: 51 } as never)).rejects.toThrow('limit: must be between 0 and 50');
    await expect(service.scanItems({ cursor: 'elsewhere', limit: 2 } as never)).rejects.toThrow(InvalidArgumentError);
  });

  it('lists every user a page at a time as ScanItems pages the items, with the same limit and cursor checks', async () => {
    const { service } = setup();
    const userIds = ['u1', 'u2', 'u3', 'u4', 'u5'];
    await service.upsertUsers(
      create(features.UpsertUsersRequestSchema, {
        users: userIds.map((userId, k) => ({ userId, features: { values: { k: { kind: { case: 'numeric' as const, value: k } } } } })),
      }),
    );
    await seed(service); // items and histories: other rows the user scan leaves out
    const seen: string[] = [];
    let cursor = '';
    do {
      const page = (await service.listUsers({ cursor, limit: 2 } as never)).decode();
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((u) => `${u.userId}:${u.features?.values.k?.kind.value}`));
      cursor = page.nextCursor;
    } while (cursor !== '');
    expect(seen).toEqual(userIds.map((id, k) => `${id}:${k}`));
    expect((await service.listUsers({ cursor: '', limit: 0 } as never)).decode().users).toHaveLength(5);
    await expect(service.listUsers({ cursor: '', limit: -1 } as never)).rejects.toThrow('limit: must be between 0 and 50');
    await expect(service.listUsers({ cursor: 'elsewhere', limit: 2 } as never)).rejects.toThrow(InvalidArgumentError);
    await expect(service.listUsers({ cursor: '9'.repeat(65), limit: 2 } as never)).rejects.toThrow(InvalidArgumentError);
  });

  it('filters popular items by category and excluded ids, using the default limit for 0', async () => {
    const { service } = setup();
    await seed(service);
    const ids = async (request: object) => (await service.getPopularItems(request as never)).items!.map((p) => p.itemId);
    expect(await ids({ limit: 0 })).toEqual(['e', 'd', 'c']);
    expect(await ids({ limit: 5, filter: { excludeItemIds: ['d'] } })).toEqual(['e', 'c', 'b', 'a']);
    expect(await ids({ limit: 5, filter: { includeCategories: ['odd'] } })).toEqual(['d', 'b']);
    expect(await ids({ limit: 2, filter: { excludeCategories: ['odd'], excludeItemIds: ['e'] } })).toEqual(['c', 'a']);
    await expect(service.getPopularItems({ limit: 21 } as never)).rejects.toThrow('limit: must be between 0 and 20');
  });

  it('stamps events without a time with the receive time and refuses future ones', async () => {
    const { service } = setup();
    await service.recordFeedback(
      create(features.RecordFeedbackRequestSchema, {
        events: [{ eventId: 'e', userId: 'u', itemId: 'a', eventType: common.EventType.CLICK, timestampMs: 0n }],
      }),
    );
    const user = await service.getUserFeatures({ userId: 'u', historyLimit: 0 } as never);
    expect(user.history).toEqual([expect.objectContaining({ itemId: 'a', timestampMs: BigInt(NOW) })]);
    const future = { eventId: 'f', userId: 'u', itemId: 'a', eventType: common.EventType.CLICK, timestampMs: BigInt(NOW + 2 * 86400_000) };
    await expect(service.recordFeedback(create(features.RecordFeedbackRequestSchema, { events: [future] }))).rejects.toThrow(
      'events[0].timestamp_ms: is more than a day in the future',
    );
  });

  it('refuses times no Date holds and negative ones, naming the field (events, impressions, event-log reads)', async () => {
    const { service } = setup();
    const event = (timestampMs: bigint) => ({ eventId: 'e', userId: 'u', itemId: 'a', eventType: common.EventType.CLICK, timestampMs });
    await expect(service.recordFeedback(create(features.RecordFeedbackRequestSchema, { events: [event(-1n)] }))).rejects.toThrow(
      'events[0].timestamp_ms: must be Unix milliseconds from 0 to 8640000000000000',
    );
    const impression = (timestampMs: bigint) => ({
      requestId: 'r',
      userId: 'u',
      timestampMs,
      items: [{ itemId: 'a', position: 0, score: 1 }],
    });
    for (const timestampMs of [-1n, 8_640_000_000_000_001n, 2n ** 63n - 1n]) {
      await expect(
        service.logImpressions(create(features.LogImpressionsRequestSchema, { impressions: [impression(timestampMs)] })),
      ).rejects.toThrow('impressions[0].timestamp_ms: must be Unix milliseconds from 0 to 8640000000000000');
    }
    await expect(service.readEventLog(create(features.ReadEventLogRequestSchema, { sinceMs: 9_000_000_000_000_000n }))).rejects.toThrow(
      'since_ms: must be Unix milliseconds from 0 to 8640000000000000',
    );
    const items = await service.upsertItems(
      create(features.UpsertItemsRequestSchema, {
        items: [
          { itemId: 'late', createdAtMs: 9_000_000_000_000_000n },
          { itemId: 'ok', createdAtMs: 1n },
        ],
      }),
    );
    expect(items).toMatchObject({
      stored: 1,
      rejected: [{ index: 0, id: 'late', reason: expect.stringContaining('created_at_ms: must be Unix milliseconds from 0') }],
    });
    await expect(service.readEventLog(create(features.ReadEventLogRequestSchema, { untilMs: -5n }))).rejects.toThrow(
      'until_ms: must be Unix milliseconds from 0 to 8640000000000000',
    );
  });

  it('refuses oversized batches and bad ids before touching the store', async () => {
    const { service } = setup();
    const tooMany = Array.from({ length: 51 }, (_, i) => `i${i}`);
    await expect(service.batchGetItemFeatures({ itemIds: tooMany } as never)).rejects.toThrow(InvalidArgumentError);
    await expect(service.batchGetItemFeatures({ itemIds: ['ok', 'tab\there'] } as never)).rejects.toThrow(
      'item_ids[1]: must not contain control characters',
    );
    await expect(service.upsertUsers({ users: Array.from({ length: 51 }, () => ({ userId: 'u' })) } as never)).rejects.toThrow(
      'users: at most 50 entries per call (got 51)',
    );
  });

  it('turns a store outage into UNAVAILABLE and leaves other errors alone', async () => {
    const down = new Proxy({} as FeatureStore, {
      get: () => () => Promise.reject(new StoreUnavailableError('Redis at 10.0.0.1:6379 is unreachable: connection closed')),
    });
    const service = new FeatureService(down, config);
    const outage = service.getUserFeatures({ userId: 'u', historyLimit: 0 } as never);
    await expect(outage).rejects.toThrow(UnavailableError);
    await expect(outage).rejects.toMatchObject({ code: status.UNAVAILABLE, message: expect.stringContaining('Redis at 10.0.0.1:6379') });

    const broken = new Proxy({} as FeatureStore, { get: () => () => Promise.reject(new TypeError('bug')) });
    await expect(new FeatureService(broken, config).getUserFeatures({ userId: 'u', historyLimit: 0 } as never)).rejects.toThrow(TypeError);
  });
});
