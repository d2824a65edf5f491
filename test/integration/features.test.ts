import { status } from '@grpc/grpc-js';
import { common } from '@recsys/contracts';
import { RedisServer } from '@recsys/testing';
import { startTestFeatureService, type FeatureClient } from '../harness/features';

const redisUrl = () => {
  const url = process.env.REDIS_TEST_URL;
  if (!url) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
  return url;
};

const num = (value: number) => ({ kind: { case: 'numeric' as const, value } });
const cat = (value: string) => ({ kind: { case: 'categorical' as const, value } });

const clusterNodes = () => {
  const nodes = process.env.REDIS_CLUSTER_TEST_NODES;
  if (!nodes) throw new Error('REDIS_CLUSTER_TEST_NODES is not set: the jest global setup starts a Redis Cluster');
  return nodes;
};

// The same service selected by configuration: one Redis (REDIS_URL) or a 3-master Redis Cluster (REDIS_CLUSTER_NODES).
describe.each([
  ['a real Redis', () => ({ REDIS_URL: redisUrl() })],
  ['a real Redis Cluster', () => ({ REDIS_CLUSTER_NODES: clusterNodes() })],
])('feature service over gRPC on %s', (_name, store) => {
  let client: FeatureClient;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ client, stop } = await startTestFeatureService({
      ...store(),
      MAX_BATCH_SIZE: '100',
      HISTORY_CAP: '5',
      HISTORY_DEFAULT_LIMIT: '5',
    }));
    await client.upsertItems({
      items: [
        { itemId: 'a', category: 'books', createdAtMs: 1700000000000n, features: { values: { price: num(9.5), lang: cat('en') } } },
        {
          itemId: 'b',
          category: 'music',
          features: { values: { genres: { kind: { case: 'multi', value: { values: ['jazz', 'soul'] } } } } },
        },
        { itemId: 'c', category: 'books', features: { values: { emb: { kind: { case: 'vector', value: { values: [0.25, -1] } } } } } },
      ],
    });
    await client.upsertUsers({ users: [{ userId: 'u1', features: { values: { age: num(31), country: cat('fr') } } }] });
  });
  afterAll(() => stop());

  it('reads a batch in request order and reports the missing ids', async () => {
    const response = await client.batchGetItemFeatures({ itemIds: ['c', 'nope', 'a', 'a', 'b'] });
    expect(response.items.map((r) => [r.found, r.item?.itemId])).toEqual([
      [true, 'c'],
      [false, 'nope'],
      [true, 'a'],
      [true, 'a'],
      [true, 'b'],
    ]);
    expect(response.missingIds).toEqual(['nope']);
    const a = response.items[2]!.item!;
    expect(a.category).toBe('books');
    expect(a.createdAtMs).toBe(1700000000000n);
    expect(a.features?.values.price?.kind).toEqual({ case: 'numeric', value: 9.5 });
    expect(response.items[0]!.item!.features?.values.emb?.kind.value).toMatchObject({ values: [0.25, -1] });
  });

  it('records feedback once per event id, into a capped newest-first history and popularity', async () => {
    const events = [1, 2, 3, 4, 5, 6, 7].map((n) => ({
      eventId: `ev-${n}`,
      userId: 'u1',
      itemId: n % 2 ? 'a' : 'b',
      eventType: common.EventType.VIEW,
      timestampMs: BigInt(Date.now() - (10 - n) * 1000),
      dwellSeconds: n,
    }));
    expect(await client.recordFeedback({ events })).toMatchObject({ accepted: 7, duplicates: 0 });
    const replay = await client.recordFeedback({ events });
    expect(replay).toMatchObject({ accepted: 0, duplicates: 7 });

    const user = await client.getUserFeatures({ userId: 'u1', historyLimit: 5 });
    expect(user.found).toBe(true);
    expect(user.user?.features?.values.age?.kind).toEqual({ case: 'numeric', value: 31 });
    expect(user.history.map((h) => h.dwellSeconds)).toEqual([7, 6, 5, 4, 3]);
    expect(user.history[0]).toMatchObject({ itemId: 'a', eventType: common.EventType.VIEW });

    const popular = await client.getPopularItems({ limit: 10 });
    expect(popular.items.map((p) => p.itemId)).toEqual(['a', 'b']);
    expect(popular.items[0]!.score).toBeGreaterThan(popular.items[1]!.score);
    const music = await client.getPopularItems({ limit: 10, filter: { includeCategories: ['music'] } });
    expect(music.items.map((p) => p.itemId)).toEqual(['b']);
  });

  it('answers an unknown user with found=false and empty features', async () => {
    const response = await client.getUserFeatures({ userId: 'stranger' });
    expect(response).toMatchObject({ found: false, history: [] });
    expect(response.user?.userId).toBe('stranger');
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field', async () => {
    const cases: [Promise<unknown>, string][] = [
      [client.getUserFeatures({ userId: '' }), 'user_id: must not be empty'],
      [client.getUserFeatures({ userId: 'x'.repeat(300) }), 'user_id: must be at most 256 characters'],
      [client.getUserFeatures({ userId: 'u1', historyLimit: 6 }), 'history_limit: must be between 0 and 5'],
      [client.batchGetItemFeatures({ itemIds: ['a', ''] }), 'item_ids[1]: must not be empty'],
      [client.batchGetItemFeatures({ itemIds: Array.from({ length: 101 }, (_, i) => `i${i}`) }), 'item_ids: at most 100 entries'],
      [
        client.recordFeedback({
          events: [
            { eventId: 'ok', userId: 'u', itemId: 'a', eventType: common.EventType.CLICK },
            { eventId: 'bad', userId: 'u', itemId: 'a' },
          ],
        }),
        'events[1].event_type: must be one of',
      ],
      [
        client.recordFeedback({
          events: [{ eventId: 'e', userId: 'u', itemId: 'a', eventType: common.EventType.CLICK, dwellSeconds: -1 }],
        }),
        'events[0].dwell_seconds',
      ],
      [client.getPopularItems({ limit: -1 }), 'limit: must be between'],
    ];
    for (const [call, message] of cases) {
      await expect(call).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining(message) });
    }
    // The batch with a bad event stored nothing, not even its good event.
    const user = await client.getUserFeatures({ userId: 'u' });
    expect(user.history).toEqual([]);
  });

  // Regression (resilience fuzz): feedback for an item the catalogue does not hold made that item popular, and the
  // popular list is served to everyone (a hostile client could push any id to the top).
  it('keeps hostile feedback out: unknown items add no popularity, replays change nothing, unknown users get only their own history', async () => {
    const before = await client.getPopularItems({ limit: 10 });
    const ghost = (n: number, userId = 'u1') => ({
      eventId: `ghost-${n}`,
      userId,
      itemId: `ghost-item-${n % 3}`,
      eventType: common.EventType.PURCHASE,
      timestampMs: BigInt(Date.now() - 1000 + n),
    });
    const ghosts = Array.from({ length: 30 }, (_, n) => ghost(n));
    expect(await client.recordFeedback({ events: ghosts })).toMatchObject({ accepted: 30, duplicates: 0 });
    const after = await client.getPopularItems({ limit: 10 });
    expect(after.items.map((p) => p.itemId)).toEqual(before.items.map((p) => p.itemId));
    // The user did interact: the history keeps it.
    expect((await client.getUserFeatures({ userId: 'u1', historyLimit: 5 })).history[0]?.itemId).toMatch(/^ghost-item-/);

    // A replay of known events, alone or mixed with new ones, leaves history and popularity as they were.
    const known = [1, 2, 3].map((n) => ({
      eventId: `known-${n}`,
      userId: 'replayer',
      itemId: 'c',
      eventType: common.EventType.CLICK,
      timestampMs: BigInt(Date.now() - 5000 + n),
    }));
    expect(await client.recordFeedback({ events: known })).toMatchObject({ accepted: 3, duplicates: 0 });
    const history = (await client.getUserFeatures({ userId: 'replayer', historyLimit: 5 })).history;
    const popular = await client.getPopularItems({ limit: 10 });
    for (let i = 0; i < 3; i++)
      expect(await client.recordFeedback({ events: [...known].reverse() })).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(await client.recordFeedback({ events: ghosts })).toMatchObject({ accepted: 0, duplicates: 30 });
    expect((await client.getUserFeatures({ userId: 'replayer', historyLimit: 5 })).history).toEqual(history);
    const replayed = await client.getPopularItems({ limit: 10 });
    expect(replayed.items.map((p) => p.itemId)).toEqual(popular.items.map((p) => p.itemId));
    replayed.items.forEach((item, i) => expect(item.score).toBeCloseTo(popular.items[i]!.score, 3));

    // A user the store has never seen: their events are theirs alone, and they stay "not found" as a user.
    expect(await client.recordFeedback({ events: [ghost(100, 'newcomer')] })).toMatchObject({ accepted: 1 });
    const newcomer = await client.getUserFeatures({ userId: 'newcomer', historyLimit: 5 });
    expect(newcomer.history.map((h) => h.itemId)).toEqual(['ghost-item-1']);
    expect(newcomer.user?.features?.values ?? {}).toEqual({});
  });

  it('stores good upsert rows and reports bad ones with reasons', async () => {
    const response = await client.upsertItems({
      items: [
        { itemId: 'ok1' },
        { itemId: '' },
        { itemId: 'nan', features: { values: { price: num(Number.NaN) } } },
        { itemId: 'empty', features: { values: { price: {} } } },
      ],
    });
    expect(response.stored).toBe(1);
    expect(response.rejected.map((r) => [r.index, r.reason])).toEqual([
      [1, 'item_id: must not be empty'],
      [2, 'features: feature "price" must be a finite number'],
      [3, 'features: feature "price" has no value'],
    ]);
  });
});

describe('feature service when Redis goes away', () => {
  it('answers UNAVAILABLE naming Redis, then recovers with nothing lost', async () => {
    const redis = await RedisServer.start();
    const { client, stop } = await startTestFeatureService({ REDIS_URL: redis.url });
    try {
      await client.upsertItems({ items: [{ itemId: 'kept', category: 'x' }] });
      await client.recordFeedback({ events: [{ eventId: 'e1', userId: 'u', itemId: 'kept', eventType: common.EventType.PURCHASE }] });
      await redis.stop();

      await expect(client.batchGetItemFeatures({ itemIds: ['kept'] })).rejects.toMatchObject({
        code: status.UNAVAILABLE,
        details: expect.stringMatching(new RegExp(`Redis at 127\\.0\\.0\\.1:${redis.port}`)),
      });
      await expect(
        client.recordFeedback({ events: [{ eventId: 'e2', userId: 'u', itemId: 'kept', eventType: common.EventType.VIEW }] }),
      ).rejects.toMatchObject({ code: status.UNAVAILABLE });

      await redis.resume();
      const until = Date.now() + 10000;
      let read: Awaited<ReturnType<FeatureClient['batchGetItemFeatures']>> | undefined;
      while (!read && Date.now() < until) {
        read = await client.batchGetItemFeatures({ itemIds: ['kept'] }).catch(() => undefined);
        if (!read) await new Promise((r) => setTimeout(r, 100));
      }
      expect(read?.items[0]).toMatchObject({ found: true, item: { itemId: 'kept', category: 'x' } });
      // The retried event applies once; the first one is still remembered.
      const retry = await client.recordFeedback({
        events: [
          { eventId: 'e1', userId: 'u', itemId: 'kept', eventType: common.EventType.PURCHASE },
          { eventId: 'e2', userId: 'u', itemId: 'kept', eventType: common.EventType.VIEW },
        ],
      });
      expect(retry).toMatchObject({ accepted: 1, duplicates: 1 });
      expect((await client.getUserFeatures({ userId: 'u' })).history.map((h) => h.eventType)).toEqual([
        common.EventType.VIEW,
        common.EventType.PURCHASE,
      ]);
    } finally {
      await stop();
      await redis.destroy();
    }
  });
});
