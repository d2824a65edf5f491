import { randomUUID } from 'node:crypto';
import { create, equals, fromBinary } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { Cluster, Redis } from 'ioredis';
import { type FeatureStore, type FeatureStoreOptions, InvalidCursorError, type ScanPage } from './feature-store.js';
import { MemoryFeatureStore } from './memory-feature-store.js';
import { parseClusterNodes } from './redis-cluster-nodes.js';
import { RedisFeatureStore } from './redis-feature-store.js';

const { EventType } = common;
const HOUR = 3_600_000;

const baseOptions: FeatureStoreOptions = {
  historyCap: 3,
  popularityHalfLifeMs: HOUR,
  dedupTtlMs: 60_000,
  eventWeights: { [EventType.IMPRESSION]: 0.25, [EventType.CLICK]: 1, [EventType.PURCHASE]: 4, [EventType.DISLIKE]: -1 },
  historyEventTypes: new Set([EventType.VIEW, EventType.CLICK, EventType.PURCHASE, EventType.DISLIKE]),
  eventLogRetentionMs: 3_600_000,
  attributionWindowMs: 3_600_000,
};

interface StoreKind {
  name: string;
  create(overrides?: Partial<FeatureStoreOptions>): Promise<FeatureStore>;
  cleanup(): Promise<void>;
}

const memoryKind: StoreKind = {
  name: 'MemoryFeatureStore',
  create: async (overrides) => new MemoryFeatureStore({ ...baseOptions, ...overrides }),
  cleanup: async () => undefined,
};

// Each store gets its own key prefix: other spec files share the run's Redis.
const usedPrefixes: string[] = [];
const redisKind: StoreKind = {
  name: 'RedisFeatureStore',
  create: async (overrides) => {
    const keyPrefix = `contract:${randomUUID()}:`;
    usedPrefixes.push(keyPrefix);
    return RedisFeatureStore.connect(redisUrl(), { ...baseOptions, ...overrides, keyPrefix });
  },
  cleanup: async () => {
    const admin = new Redis(redisUrl());
    try {
      for (const prefix of usedPrefixes.splice(0)) {
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length > 0) await admin.del(...keys);
      }
    } finally {
      admin.disconnect();
    }
  },
};

// The same suite on the run's 3-master Redis Cluster: hash-tagged keys, reads and scripts per node.
const clusterPrefixes: string[] = [];
const clusterKind: StoreKind = {
  name: 'RedisFeatureStore on a Redis Cluster',
  create: async (overrides) => {
    const keyPrefix = `contract:${randomUUID()}:`;
    clusterPrefixes.push(keyPrefix);
    return RedisFeatureStore.connectCluster(parseClusterNodes(clusterSeeds()), { ...baseOptions, ...overrides, keyPrefix });
  },
  cleanup: async () => {
    const admin = new Cluster(parseClusterNodes(clusterSeeds()).nodes);
    try {
      await admin.ping(); // waits until the client knows the masters
      for (const prefix of clusterPrefixes.splice(0)) {
        for (const node of admin.nodes('master')) {
          const keys = await node.keys(`${prefix}*`);
          // Keys of different slots cannot go in one DEL.
          for (const key of keys) await node.del(key);
        }
      }
    } finally {
      admin.disconnect();
    }
  },
};

function clusterSeeds(): string {
  const seeds = process.env.REDIS_CLUSTER_TEST_NODES;
  if (!seeds) throw new Error('REDIS_CLUSTER_TEST_NODES is not set: run through jest, whose global setup starts a Redis Cluster');
  return seeds;
}

function redisUrl(): string {
  const url = process.env.REDIS_TEST_URL;
  if (!url) throw new Error('REDIS_TEST_URL is not set: run through jest, whose global setup starts redis-server');
  return url;
}

function numeric(value: number): common.FeatureValue {
  return create(common.FeatureValueSchema, { kind: { case: 'numeric', value } });
}

function categorical(value: string): common.FeatureValue {
  return create(common.FeatureValueSchema, { kind: { case: 'categorical', value } });
}

function item(itemId: string, values: Record<string, common.FeatureValue> = {}, category = 'books'): features.Item {
  return create(features.ItemSchema, {
    itemId,
    category,
    createdAtMs: 1_767_225_600_000n,
    features: { values },
  });
}

let eventSeq = 0;
function event(
  userId: string,
  itemId: string,
  eventType: common.EventType,
  timestampMs: number,
  extra: { eventId?: string; dwellSeconds?: number } = {},
): common.FeedbackEvent {
  return create(common.FeedbackEventSchema, {
    eventId: extra.eventId ?? `ev-${++eventSeq}`,
    userId,
    itemId,
    eventType,
    timestampMs: BigInt(timestampMs),
    dwellSeconds: extra.dwellSeconds ?? 0,
  });
}

function expectClose(actual: number, expected: number, relative = 1e-6): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.abs(expected) * relative);
}

describe.each([memoryKind, redisKind, clusterKind])('FeatureStore contract: $name', (kind) => {
  const stores: FeatureStore[] = [];
  async function newStore(overrides?: Partial<FeatureStoreOptions>): Promise<FeatureStore> {
    const store = await kind.create(overrides);
    stores.push(store);
    return store;
  }
  let store: FeatureStore;
  // A recent "now" so that event times stay within the store's future-skew clamp.
  let now: number;

  beforeEach(async () => {
    store = await newStore();
    now = Date.now() - 60_000;
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await kind.cleanup();
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('has nothing for unknown users and items', async () => {
    await expect(store.getUser('nobody', 10)).resolves.toEqual({ user: undefined, history: [] });
    await expect(store.getItems(['x', 'y'])).resolves.toEqual([undefined, undefined]);
    await expect(store.getItems([])).resolves.toEqual([]);
  });

  it('round-trips user and item features of every kind', async () => {
    const user = create(features.UserSchema, {
      userId: 'u1',
      features: {
        values: {
          country: categorical('SE'),
          age: numeric(41.5),
          genres: create(common.FeatureValueSchema, {
            kind: { case: 'multi', value: create(common.StringListSchema, { values: ['jazz', 'folk'] }) },
          }),
          embedding: create(common.FeatureValueSchema, {
            kind: { case: 'vector', value: create(common.FloatListSchema, { values: [0.5, -1.25, 3] }) },
          }),
        },
      },
    });
    const stored = item('i1', { price: numeric(12.99), brand: categorical('acme') }, 'kitchen');
    await store.upsertUsers([user]);
    await store.upsertItems([stored]);

    const { user: got, history } = await store.getUser('u1', 10);
    expect(history).toEqual([]);
    expect(got).toBeDefined();
    expect(equals(features.UserSchema, got!, user)).toBe(true);
    expect(got!.features!.values.embedding!.kind).toEqual({
      case: 'vector',
      value: expect.objectContaining({ values: [0.5, -1.25, 3] }),
    });
    expect(got!.features!.values.genres!.kind.value).toEqual(expect.objectContaining({ values: ['jazz', 'folk'] }));

    const [gotItem] = await store.getItems(['i1']);
    expect(equals(features.ItemSchema, gotItem!, stored)).toBe(true);
    expect(gotItem!.category).toBe('kitchen');
    expect(gotItem!.createdAtMs).toBe(1_767_225_600_000n);
    expect(gotItem!.features!.values.price!.kind).toEqual({ case: 'numeric', value: 12.99 });
  });

  it('keeps stored values apart from the caller’s objects', async () => {
    const original = item('i1', { price: numeric(1) });
    await store.upsertItems([original]);
    original.category = 'changed by caller';
    const [first] = await store.getItems(['i1']);
    first!.features!.values.price = numeric(999);
    const [second] = await store.getItems(['i1']);
    expect(second!.category).toBe('books');
    expect(second!.features!.values.price!.kind.value).toBe(1);
  });

  it('answers items in request order, with gaps for missing ids and repeats for duplicates', async () => {
    await store.upsertItems([item('a', { n: numeric(1) }), item('c', { n: numeric(3) })]);
    const got = await store.getItems(['a', 'missing', 'c', 'a', 'other']);
    expect(got.map((i) => i?.itemId)).toEqual(['a', undefined, 'c', 'a', undefined]);
    expect(got[2]!.features!.values.n!.kind.value).toBe(3);
    expect(got[3]).not.toBe(got[0]);
  });

  it('scans every stored item exactly once, page by page, as stored (users and other keys left out)', async () => {
    const ids = Array.from({ length: 57 }, (_, k) => `scan-${k}`);
    await store.upsertItems(ids.map((id, k) => item(id, { n: numeric(k) }, `c${k % 3}`)));
    await store.upsertItems([item('scan-3', { n: numeric(300) }, 'replaced')]);
    await store.upsertUsers([create(features.UserSchema, { userId: 'scan-user', features: { values: { a: numeric(1) } } })]);
    await store.recordEvents([event('scan-user', 'scan-1', EventType.CLICK, now)]);
    const seen = new Map<string, features.Item>();
    let cursor = '';
    let pages = 0;
    do {
      const page = await store.scanItems(cursor, 10);
      for (const bytes of page.rows) {
        const got = fromBinary(features.ItemSchema, bytes);
        expect(seen.has(got.itemId)).toBe(false);
        seen.set(got.itemId, got);
      }
      cursor = page.next;
      expect(++pages).toBeLessThan(1000);
    } while (cursor !== '');
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    expect(seen.get('scan-3')!.category).toBe('replaced');
    expect(seen.get('scan-3')!.features!.values.n!.kind.value).toBe(300);
    expect(seen.get('scan-56')!.createdAtMs).toBe(1_767_225_600_000n);
    await expect(store.scanItems('not a cursor', 10)).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('scans an empty store in one empty page', async () => {
    let cursor = '';
    const items: Uint8Array[] = [];
    do {
      const page = await store.scanItems(cursor, 100);
      items.push(...page.rows);
      cursor = page.next;
    } while (cursor !== '');
    expect(items).toEqual([]);
  });

  it('replaces on upsert rather than merging', async () => {
    await store.upsertItems([item('a', { old: numeric(1) }, 'books')]);
    await store.upsertItems([item('a', { fresh: numeric(2) }, 'games')]);
    const [got] = await store.getItems(['a']);
    expect(got!.category).toBe('games');
    expect(Object.keys(got!.features!.values)).toEqual(['fresh']);

    await store.upsertUsers([create(features.UserSchema, { userId: 'u', features: { values: { a: numeric(1) } } })]);
    await store.upsertUsers([create(features.UserSchema, { userId: 'u', features: { values: { b: numeric(2) } } })]);
    const { user } = await store.getUser('u', 0);
    expect(Object.keys(user!.features!.values)).toEqual(['b']);
  });

  it('keeps the last row when one batch upserts an id twice', async () => {
    await store.upsertItems([item('a', {}, 'first'), item('a', {}, 'second')]);
    const [got] = await store.getItems(['a']);
    expect(got!.category).toBe('second');
  });

  it('keeps history newest first, capped, with entry fields intact', async () => {
    const sent = [
      event('u1', 'i1', EventType.CLICK, now - 4000, { dwellSeconds: 1.5 }),
      event('u1', 'i2', EventType.VIEW, now - 3000),
      event('u1', 'i3', EventType.PURCHASE, now - 2000, { dwellSeconds: 30.25 }),
      event('u1', 'i4', EventType.CLICK, now - 1000),
    ];
    await store.recordEvents(sent);
    const { user, history } = await store.getUser('u1', 10);
    // History without features is a cold-start user who still has a past.
    expect(user).toBeUndefined();
    expect(history.map((h) => h.itemId)).toEqual(['i4', 'i3', 'i2']);
    expect(history[1]).toEqual(
      expect.objectContaining({
        itemId: 'i3',
        timestampMs: BigInt(now - 2000),
        dwellSeconds: 30.25,
        eventType: EventType.PURCHASE,
      }),
    );

    await store.recordEvents([event('u1', 'i5', EventType.CLICK, now)]);
    expect((await store.getUser('u1', 10)).history.map((h) => h.itemId)).toEqual(['i5', 'i4', 'i3']);
  });

  it('orders a batch by event time, whatever order it was sent in', async () => {
    await store.recordEvents([
      event('u1', 'newest', EventType.CLICK, now),
      event('u1', 'oldest', EventType.CLICK, now - 2000),
      event('u1', 'middle', EventType.CLICK, now - 1000),
    ]);
    expect((await store.getUser('u1', 10)).history.map((h) => h.itemId)).toEqual(['newest', 'middle', 'oldest']);
  });

  it('returns at most the history limit asked for', async () => {
    await store.recordEvents([
      event('u1', 'i1', EventType.CLICK, now - 2000),
      event('u1', 'i2', EventType.CLICK, now - 1000),
      event('u1', 'i3', EventType.CLICK, now),
    ]);
    expect((await store.getUser('u1', 2)).history.map((h) => h.itemId)).toEqual(['i3', 'i2']);
    expect((await store.getUser('u1', 0)).history).toEqual([]);
  });

  it('stamps events without a time with the time they are recorded', async () => {
    const before = Date.now();
    await store.recordEvents([event('u1', 'i1', EventType.CLICK, 0)]);
    const after = Date.now();
    const [entry] = (await store.getUser('u1', 1)).history;
    expect(Number(entry!.timestampMs)).toBeGreaterThanOrEqual(before);
    expect(Number(entry!.timestampMs)).toBeLessThanOrEqual(after);
  });

  it('leaves event types outside historyEventTypes out of history but counts their weight', async () => {
    const result = await store.recordEvents([
      event('u1', 'shown', EventType.IMPRESSION, now),
      event('u1', 'clicked', EventType.CLICK, now),
    ]);
    expect(result).toEqual({ accepted: 2, duplicates: 0 });
    expect((await store.getUser('u1', 10)).history.map((h) => h.itemId)).toEqual(['clicked']);
    const popular = await store.popular(10, now);
    expect(popular.map((p) => p.itemId)).toEqual(['clicked', 'shown']);
    expectClose(popular[1]!.score, 0.25);
  });

  it('adds nothing to popularity for event types without a positive weight', async () => {
    await store.recordEvents([
      event('u1', 'viewed', EventType.VIEW, now),
      event('u1', 'disliked', EventType.DISLIKE, now),
      event('u1', 'clicked', EventType.CLICK, now),
    ]);
    expect((await store.popular(10, now)).map((p) => p.itemId)).toEqual(['clicked']);
    expect((await store.getUser('u1', 10)).history).toHaveLength(3);
  });

  it('applies a replayed batch only once', async () => {
    const batch = [
      event('u1', 'i1', EventType.CLICK, now - 2000),
      event('u1', 'i2', EventType.PURCHASE, now - 1000),
      event('u2', 'i1', EventType.CLICK, now),
    ];
    await expect(store.recordEvents(batch)).resolves.toEqual({ accepted: 3, duplicates: 0 });
    const historyBefore = await store.getUser('u1', 10);
    const popularBefore = await store.popular(10, now);

    await expect(store.recordEvents(batch)).resolves.toEqual({ accepted: 0, duplicates: 3 });
    await expect(store.getUser('u1', 10)).resolves.toEqual(historyBefore);
    await expect(store.popular(10, now)).resolves.toEqual(popularBefore);
    expect(popularBefore).toHaveLength(2);
    expectClose(popularBefore.find((p) => p.itemId === 'i1')!.score, 1 + 2 ** (-2000 / HOUR));
  });

  it('applies an id repeated within one batch once', async () => {
    const once = event('u1', 'i1', EventType.CLICK, now, { eventId: 'same' });
    const again = event('u1', 'i1', EventType.CLICK, now, { eventId: 'same' });
    const other = event('u1', 'i2', EventType.CLICK, now);
    await expect(store.recordEvents([once, again, other])).resolves.toEqual({ accepted: 2, duplicates: 1 });
    expect((await store.getUser('u1', 10)).history).toHaveLength(2);
    const popular = await store.popular(10, now);
    expectClose(popular.find((p) => p.itemId === 'i1')!.score, 1);
  });

  it('accepts an event id again once its de-duplication window has passed', async () => {
    const shortMemory = await newStore({ dedupTtlMs: 150 });
    const e = event('u1', 'i1', EventType.CLICK, now, { eventId: 'expiring' });
    await expect(shortMemory.recordEvents([e])).resolves.toEqual({ accepted: 1, duplicates: 0 });
    await expect(shortMemory.recordEvents([e])).resolves.toEqual({ accepted: 0, duplicates: 1 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    await expect(shortMemory.recordEvents([e])).resolves.toEqual({ accepted: 1, duplicates: 0 });
  });

  it('ranks by decayed weight: an event one half-life older counts half', async () => {
    await store.recordEvents([
      event('u1', 'fresh', EventType.CLICK, now),
      event('u2', 'hour-old', EventType.CLICK, now - HOUR),
      event('u3', 'popular', EventType.CLICK, now - HOUR),
      event('u4', 'popular', EventType.CLICK, now - HOUR),
      event('u5', 'popular', EventType.CLICK, now - HOUR),
      event('u6', 'bought-long-ago', EventType.PURCHASE, now - 5 * HOUR),
    ]);
    const popular = await store.popular(10, now);
    expect(popular.map((p) => p.itemId)).toEqual(['popular', 'fresh', 'hour-old', 'bought-long-ago']);
    expectClose(popular[0]!.score, 1.5); // 3 * 2^-1
    expectClose(popular[1]!.score, 1);
    expectClose(popular[2]!.score, 0.5);
    expectClose(popular[3]!.score, 0.125); // 4 * 2^-5

    // All decay alike, so the order holds and every score halves an hour later.
    const later = await store.popular(10, now + HOUR);
    expect(later.map((p) => p.itemId)).toEqual(popular.map((p) => p.itemId));
    later.forEach((p, i) => expectClose(p.score, popular[i]!.score / 2));

    await store.recordEvents([event('u7', 'hour-old', EventType.PURCHASE, now)]);
    const after = await store.popular(1, now);
    expect(after.map((p) => p.itemId)).toEqual(['hour-old']);
    expectClose(after[0]!.score, 4.5);
  });

  it('orders items of equal popularity by id, highest first, as Redis does', async () => {
    // On a cluster these items sit in different popularity shards, so the merge decides the order.
    const ids = ['item-1', 'item-2', 'b', 'a', 'item-10', 'é'];
    await store.recordEvents(ids.map((id, n) => event(`u${n}`, id, EventType.CLICK, now)));
    const popular = await store.popular(10, now);
    expect(popular.map((p) => p.itemId)).toEqual(['é', 'item-2', 'item-10', 'item-1', 'b', 'a']);
    expect(new Set(popular.map((p) => p.score)).size).toBe(1);
  });

  it('decays a single event by half per half-life', async () => {
    await store.recordEvents([event('u1', 'i1', EventType.PURCHASE, now)]);
    expectClose((await store.popular(1, now))[0]!.score, 4);
    expectClose((await store.popular(1, now + HOUR))[0]!.score, 2);
    expectClose((await store.popular(1, now + 3 * HOUR))[0]!.score, 0.5);
    expectClose((await store.popular(1, now + HOUR / 2))[0]!.score, 4 / Math.SQRT2);
  });

  it('returns the best `limit` items when more are known', async () => {
    const events = Array.from({ length: 8 }, (_, i) => event(`u${i}`, `item-${i}`, EventType.CLICK, now - i * 60_000));
    await store.recordEvents(events);
    const top = await store.popular(3, now);
    expect(top.map((p) => p.itemId)).toEqual(['item-0', 'item-1', 'item-2']);
    expectClose(top[2]!.score, 2 ** (-120_000 / HOUR));
    expect(await store.popular(0, now)).toEqual([]);
    expect(await store.popular(100, now)).toHaveLength(8);
  });

  it('keeps scores finite for a short half-life long after the landmark', async () => {
    // A minute half-life is ~10^6 half-lives after 2025-01-01: 2^(10^6) overflows a plain sum.
    const fast = await newStore({ popularityHalfLifeMs: 60_000 });
    await fast.recordEvents([event('u1', 'a', EventType.CLICK, now), event('u2', 'a', EventType.CLICK, now - 60_000)]);
    const [top] = await fast.popular(1, now);
    expectClose(top!.score, 1.5);
  });

  it('counts an event stamped far in the future as if it happened one day ahead', async () => {
    const dayAhead = Date.now() + 24 * HOUR;
    await store.recordEvents([event('u1', 'skewed', EventType.CLICK, Date.now() + 30 * 24 * HOUR)]);
    const [top] = await store.popular(1, dayAhead);
    // Unclamped it would score 2^(29 * 24) here; clamped it is ~1 (off by the ms between clocks).
    expectClose(top!.score, 1, 1e-3);
  });

  const impression = (requestId: string, userId: string, itemIds: string[], rankingModel = '7') =>
    create(features.ImpressionSchema, {
      requestId,
      userId,
      timestampMs: BigInt(Date.now()),
      items: itemIds.map((itemId, position) => ({ itemId, position, score: 1 / (position + 1) })),
      versions: { retrievalModel: '7', index: '7', prerankingModel: '7', rankingModel },
    });
  const feedback = (eventId: string, userId: string, itemId: string, eventType: common.EventType, requestId = '') =>
    create(common.FeedbackEventSchema, { eventId, userId, itemId, eventType, requestId, timestampMs: BigInt(Date.now()) });

  it('logs impressions and feedback in write order, read a page at a time within a time range', async () => {
    const since = Date.now();
    await store.logImpressions([impression('r1', 'u1', ['a', 'b']), impression('r2', 'u2', ['c'])]);
    await store.logFeedback([feedback('e1', 'u1', 'a', EventType.CLICK, 'r1')]);
    await store.logImpressions([impression('r3', 'u1', ['d'])]);
    const all = await store.readEventLog({ sinceMs: 0, untilMs: 0, afterId: '', limit: 100 });
    expect(all.nextId).toBe('');
    expect(all.entries.map((e) => [e.event.case, (e.event.value as { requestId: string }).requestId])).toEqual([
      ['impression', 'r1'],
      ['impression', 'r2'],
      ['feedback', 'r1'],
      ['impression', 'r3'],
    ]);
    expect((all.entries[0]!.event.value as features.Impression).items.map((i) => i.itemId)).toEqual(['a', 'b']);
    const ids = all.entries.map((e) => e.id);
    for (const id of ids) expect(Number(id.split('-')[0])).toBeGreaterThanOrEqual(since - 5000);
    const paged: string[] = [];
    let afterId = '';
    do {
      const page = await store.readEventLog({ sinceMs: 0, untilMs: 0, afterId, limit: 3 });
      paged.push(...page.entries.map((e) => e.id));
      afterId = page.nextId;
    } while (afterId !== '');
    expect(paged).toEqual(ids);
    const future = await store.readEventLog({ sinceMs: Date.now() + 60_000, untilMs: 0, afterId: '', limit: 100 });
    expect(future.entries).toEqual([]);
    const past = await store.readEventLog({ sinceMs: 1, untilMs: since - 60_000, afterId: '', limit: 100 });
    expect(past.entries).toEqual([]);
  });

  it('attributes feedback to the answer its request id names, once per event type and item', async () => {
    await store.logImpressions([impression('r1', 'u1', ['a', 'b', 'c'])]);
    const attributions = await store.logFeedback([
      feedback('e1', 'u1', 'b', EventType.CLICK, 'r1'),
      feedback('e2', 'u1', 'b', EventType.CLICK, 'r1'),
      feedback('e3', 'u1', 'b', EventType.PURCHASE, 'r1'),
      feedback('e4', 'u1', 'z', EventType.CLICK, 'r1'),
      feedback('e5', 'u1', 'a', EventType.CLICK, 'unknown'),
      feedback('e6', 'u1', 'a', EventType.CLICK),
    ]);
    expect(attributions.map((a) => a && [a.position, a.versions.rankingModel])).toEqual([
      [1, '7'],
      undefined,
      [1, '7'],
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('keeps no log entry older than the retention', async () => {
    const short = await newStore({ eventLogRetentionMs: 1000 });
    await short.logImpressions([impression('old', 'u1', ['a'])]);
    await new Promise((done) => setTimeout(done, 1100));
    await short.logFeedback([feedback('e1', 'u1', 'a', EventType.CLICK)]);
    const { entries } = await short.readEventLog({ sinceMs: 0, untilMs: 0, afterId: '', limit: 100 });
    expect(entries.map((e) => e.event.case)).toEqual(['feedback']);
  });

  it('scans every user and every item once, a page at a time, each scan leaving the other rows out', async () => {
    const userIds = Array.from({ length: 25 }, (_, i) => `lu${i}`);
    const itemIds = Array.from({ length: 30 }, (_, i) => `li${i}`);
    await store.upsertUsers(userIds.map((userId) => create(features.UserSchema, { userId, features: { values: { a: numeric(1) } } })));
    await store.upsertItems(itemIds.map((itemId) => create(features.ItemSchema, { itemId, category: 'c' })));
    await store.recordEvents([event('lu1', 'li1', EventType.CLICK, now)]);
    async function all<T>(
      scan: (cursor: string) => Promise<ScanPage>,
      decode: (bytes: Uint8Array) => T,
      id: (row: T) => string,
    ): Promise<string[]> {
      const seen: string[] = [];
      let cursor = '';
      let pages = 0;
      do {
        const page = await scan(cursor);
        for (const bytes of page.rows) seen.push(id(decode(bytes)));
        cursor = page.next;
        expect(++pages).toBeLessThan(1000);
      } while (cursor !== '');
      return seen.sort();
    }
    const users = await all(
      (c) => store.scanUsers(c, 10),
      (bytes) => fromBinary(features.UserSchema, bytes),
      (u) => `${u.userId}:${u.features?.values.a?.kind.value}`,
    );
    expect(users).toEqual(userIds.map((id) => `${id}:1`).sort());
    const items = await all(
      (c) => store.scanItems(c, 7),
      (bytes) => fromBinary(features.ItemSchema, bytes),
      (i) => `${i.itemId}:${i.category}`,
    );
    expect(items).toEqual(itemIds.map((id) => `${id}:c`).sort());
    await expect(store.scanUsers('not a cursor', 10)).rejects.toBeInstanceOf(InvalidCursorError);
  });
});
