import calculateSlot from 'cluster-key-slot';
import { create } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { RedisCluster } from '@recsys/testing';
import { Cluster } from 'ioredis';
import { StoreUnavailableError, type FeatureStoreOptions } from './feature-store.js';
import { parseClusterNodes } from './redis-cluster-nodes.js';
import { RedisFeatureStore } from './redis-feature-store.js';

// A cluster of its own (the run's shared one must not lose a node under other spec files).

const { EventType } = common;

const options: FeatureStoreOptions = {
  historyCap: 10,
  popularityHalfLifeMs: 3_600_000,
  dedupTtlMs: 600_000,
  eventWeights: { [EventType.CLICK]: 1, [EventType.PURCHASE]: 4 },
  historyEventTypes: new Set([EventType.CLICK, EventType.PURCHASE]),
  eventLogRetentionMs: 3_600_000,
  attributionWindowMs: 3_600_000,
};

function click(eventId: string, userId: string, itemId: string, eventType = EventType.CLICK): common.FeedbackEvent {
  return create(common.FeedbackEventSchema, { eventId, userId, itemId, eventType, timestampMs: BigInt(Date.now() - 1000) });
}

const item = (itemId: string) => create(features.ItemSchema, { itemId, category: `cat-${itemId}`, createdAtMs: 1_767_225_600_000n });
const user = (userId: string) => create(features.UserSchema, { userId });

/** Polls ping until every master answers (ioredis reconnects with a backoff of at most 2 s). */
async function waitUntilAvailable(store: RedisFeatureStore, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The error a call settles with, and how long it took; fails if it resolves. */
async function failureOf(call: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await call();
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
  throw new Error('expected a rejection, but the call resolved');
}

describe('RedisFeatureStore on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const stores: RedisFeatureStore[] = [];

  async function connect(keyPrefix: string): Promise<RedisFeatureStore> {
    const store = await RedisFeatureStore.connectCluster(parseClusterNodes(cluster.seeds), { ...options, keyPrefix });
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('keeps the keys of one feedback event in one slot per script, ids with braces included', async () => {
    const store = await connect('slots:');
    const keys = store.keyLayout;
    for (const userId of ['u1', '}starts-with-brace', 'a}b{c}', 'back\\slash}', '{tag}']) {
      const userSlot = calculateSlot(keys.user(userId));
      expect([calculateSlot(keys.history(userId)), calculateSlot(keys.event('ev-1', userId))]).toEqual([userSlot, userSlot]);
      for (const itemId of ['i1', '}x', 'item-42']) {
        expect(calculateSlot(keys.popularityEvent('ev-1', itemId)!)).toBe(calculateSlot(keys.popularity(itemId)));
      }
    }
    // Escaping keeps keys one-to-one: `}` and `\)` do not meet.
    expect(keys.user('a}')).not.toBe(keys.user('a\\)'));

    // The store works for such ids end to end (a user's GET + LRANGE and the scripts stay in one slot).
    const odd = '}starts-with-brace';
    await store.upsertUsers([user(odd)]);
    await store.upsertItems([item('}x')]);
    await expect(store.recordEvents([click('odd-1', odd, '}x'), click('odd-2', odd, 'i1')])).resolves.toEqual({
      accepted: 2,
      duplicates: 0,
    });
    const got = await store.getUser(odd, 10);
    expect(got.user?.userId).toBe(odd);
    expect(got.history.map((h) => h.itemId)).toEqual(['i1', '}x']);
    expect((await store.getItems(['}x']))[0]?.category).toBe('cat-}x');
  });

  it('reads a batch with one pipeline per node and one MGET per slot, in request order', async () => {
    const store = await connect('batch:');
    const ids = Array.from({ length: 1000 }, (_, n) => `item-${n}`);
    await store.upsertItems(ids.filter((_, n) => n % 3 !== 0).map(item));
    const asked = [...ids].reverse().concat(['item-1', 'missing']);
    const slots = new Set(asked.map((id) => calculateSlot(store.keyLayout.item(id))));
    // Items share slots by bucket (64 by default): a 1,000-item read is at most 64 MGETs.
    expect(slots.size).toBeLessThanOrEqual(64);

    const admin = new Cluster(parseClusterNodes(cluster.seeds).nodes);
    const mgetCalls = async () => {
      let calls = 0;
      for (const node of admin.nodes('master')) {
        const stats = (await node.info('commandstats')).match(/cmdstat_mget:calls=(\d+)/);
        calls += Number(stats?.[1] ?? 0);
      }
      return calls;
    };
    const pipelines = jest.spyOn(Cluster.prototype, 'pipeline');
    try {
      await admin.ping(); // waits until the admin client knows the nodes
      const before = await mgetCalls();
      pipelines.mockClear();
      const got = await store.getItems(asked);
      expect(pipelines).toHaveBeenCalledTimes(3);
      expect((await mgetCalls()) - before).toBe(slots.size);
      expect(got.map((i) => i?.itemId)).toEqual(asked.map((id) => (id === 'missing' || Number(id.slice(5)) % 3 === 0 ? undefined : id)));
    } finally {
      pipelines.mockRestore();
      admin.disconnect();
    }
  });

  it('spreads popularity over shards and merges them best first', async () => {
    const store = await connect('pop:');
    const events = Array.from({ length: 40 }, (_, n) =>
      click(`p-${n}`, `u${n}`, `item-${n % 20}`, n < 20 ? EventType.CLICK : EventType.PURCHASE),
    );
    await expect(store.recordEvents(events)).resolves.toEqual({ accepted: 40, duplicates: 0 });
    const shardsUsed = new Set(Array.from({ length: 20 }, (_, n) => store.keyLayout.popularity(`item-${n}`)));
    expect(shardsUsed.size).toBeGreaterThan(5);
    const top = await store.popular(100, Date.now());
    expect(top).toHaveLength(20);
    expect(top.map((p) => p.score)).toEqual([...top.map((p) => p.score)].sort((a, b) => b - a));
    expect(top[0]!.score).toBeCloseTo(5, 2);
    expect((await store.popular(3, Date.now())).map((p) => p.itemId)).toEqual(top.slice(0, 3).map((p) => p.itemId));
  });

  it('completes a feedback event whose popularity part was lost, on retry, without counting it twice', async () => {
    const store = await connect('partial:');
    const event = click('half-done', 'u1', 'i1');
    await store.recordEvents([event]);
    // As if the popularity script had failed after the history script succeeded.
    const admin = new Cluster(parseClusterNodes(cluster.seeds).nodes);
    try {
      await admin.del(store.keyLayout.popularityEvent('half-done', 'i1')!);
      await admin.zrem(store.keyLayout.popularity('i1'), 'i1');
    } finally {
      admin.disconnect();
    }
    await expect(store.recordEvents([event])).resolves.toEqual({ accepted: 1, duplicates: 0 });
    expect((await store.getUser('u1', 10)).history).toHaveLength(1);
    expect((await store.popular(10, Date.now()))[0]?.score).toBeCloseTo(1, 2);
    await expect(store.recordEvents([event])).resolves.toEqual({ accepted: 0, duplicates: 1 });
  });

  it('survives a master crashing and restarting: unavailable meanwhile, then everything back', async () => {
    const store = await connect('restart:');
    const users = Array.from({ length: 30 }, (_, n) => `user-${n}`);
    const items = Array.from({ length: 60 }, (_, n) => `item-${n}`);
    await store.upsertUsers(users.map(user));
    await store.upsertItems(items.map(item));
    const events = users.map((u, n) => click(`before-${n}`, u, items[n]!, EventType.PURCHASE));
    await expect(store.recordEvents(events)).resolves.toEqual({ accepted: 30, duplicates: 0 });
    const at = Date.now();
    const popularBefore = await store.popular(100, at);
    expect(popularBefore).toHaveLength(30);

    // The node that serves user-0's slot, killed without a chance to save (AOF with fsync always).
    const victim = cluster.nodeOfSlot(calculateSlot(store.keyLayout.user('user-0')));
    await cluster.stopNode(victim, 'SIGKILL');

    const down = await failureOf(() => store.getUser('user-0', 10));
    expect(down.error).toBeInstanceOf(StoreUnavailableError);
    expect(down.error.message).toContain(`Redis Cluster (${cluster.seeds}) is unreachable`);
    expect(down.ms).toBeLessThan(5000);
    // The whole batch read fails rather than answering with holes: its items span every node.
    const batch = await failureOf(() => store.getItems(items));
    expect(batch.error).toBeInstanceOf(StoreUnavailableError);
    expect((await failureOf(() => store.ping())).error).toBeInstanceOf(StoreUnavailableError);
    // Feedback for users on every node fails as a whole; parts on live nodes may have been applied.
    const during = users.slice(0, 10).map((u, n) => click(`during-${n}`, u, 'item-59'));
    expect((await failureOf(() => store.recordEvents(during))).error).toBeInstanceOf(StoreUnavailableError);

    await cluster.startNode(victim);
    await waitUntilAvailable(store);

    const got = await store.getItems(items);
    expect(got.map((i) => i?.itemId)).toEqual(items);
    for (const [n, userId] of users.entries()) {
      const { user: features, history } = await store.getUser(userId, 10);
      expect(features?.userId).toBe(userId);
      // Users on the live nodes may already have the failed batch's event on top.
      expect(history.map((h) => h.itemId).filter((id) => id !== 'item-59')).toEqual([items[n]]);
    }
    const popularAfter = new Map((await store.popular(100, at)).map((p) => [p.itemId, p.score]));
    for (const { itemId, score } of popularBefore) expect(popularAfter.get(itemId)).toBeCloseTo(score, 9);
    // The event markers came back too: a replay is all duplicates; new events apply.
    await expect(store.recordEvents(events)).resolves.toEqual({ accepted: 0, duplicates: 30 });
    // The retried batch completes what the outage left out, each part exactly once.
    await store.recordEvents(during);
    await expect(store.recordEvents(during)).resolves.toEqual({ accepted: 0, duplicates: 10 });
    for (const userId of users.slice(0, 10)) {
      expect((await store.getUser(userId, 10)).history.filter((h) => h.itemId === 'item-59')).toHaveLength(1);
    }
    const item59 = (await store.popular(100, Date.now())).find((p) => p.itemId === 'item-59');
    expect(item59?.score).toBeCloseTo(10, 0); // ten clicks, each counted once (an eleventh would show)
  });
});
