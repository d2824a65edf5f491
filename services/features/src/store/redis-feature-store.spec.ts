import { create, fromBinary } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { Redis } from 'ioredis';
import { StoreUnavailableError, type FeatureStoreOptions } from './feature-store.js';
import { redisClientOptions, redisReconnectDelayMs } from '@recsys/service-kit';
import { RedisFeatureStore, redisClusterOptions } from './redis-feature-store.js';
import { RedisServer } from '@recsys/testing';

const { EventType } = common;

const options: FeatureStoreOptions = {
  historyCap: 10,
  popularityHalfLifeMs: 3_600_000,
  dedupTtlMs: 60_000,
  eventWeights: { [EventType.CLICK]: 1 },
  historyEventTypes: new Set([EventType.CLICK]),
  eventLogRetentionMs: 3_600_000,
  attributionWindowMs: 3_600_000,
};

const user = create(features.UserSchema, {
  userId: 'u1',
  features: { values: { country: create(common.FeatureValueSchema, { kind: { case: 'categorical', value: 'SE' } }) } },
});
const item = create(features.ItemSchema, { itemId: 'i1', category: 'books', createdAtMs: 1_767_225_600_000n });

function click(eventId: string, itemId = 'i1'): common.FeedbackEvent {
  return create(common.FeedbackEventSchema, {
    eventId,
    userId: 'u1',
    itemId,
    eventType: EventType.CLICK,
    timestampMs: BigInt(Date.now() - 1000),
  });
}

const HANG_GUARD_MS = 5000;

/** The error a call settles with; fails the test if it resolves, or does not settle in time. */
async function failureOf(call: Promise<unknown>): Promise<Error> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    call.then(
      () => ({ kind: 'resolved' as const }),
      (error: unknown) => ({ kind: 'rejected' as const, error }),
    ),
    new Promise<{ kind: 'hung' }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'hung' }), HANG_GUARD_MS);
    }),
  ]);
  clearTimeout(timer);
  if (outcome.kind !== 'rejected') throw new Error(`expected a rejection, but the call ${outcome.kind}`);
  return outcome.error as Error;
}

/** Polls ping until Redis answers again (ioredis reconnects with a backoff of at most 2 s). */
async function waitUntilAvailable(store: RedisFeatureStore, timeoutMs = 10_000): Promise<void> {
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

describe('RedisFeatureStore against a Redis that goes away', () => {
  let server: RedisServer;
  const stores: RedisFeatureStore[] = [];

  async function connect(extra: { commandTimeoutMs?: number } = {}): Promise<RedisFeatureStore> {
    const store = await RedisFeatureStore.connect(server.url, { ...options, ...extra });
    stores.push(store);
    return store;
  }

  // Resuming a server that is running would start a second redis-server on its port.
  let serverDown = false;
  async function stopServer(): Promise<void> {
    await server.stop();
    serverDown = true;
  }
  async function resumeServer(): Promise<void> {
    await server.resume();
    serverDown = false;
  }

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    if (serverDown) await resumeServer();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  it('tries to reconnect at least every 500 ms however long Redis was away (found by test:resilience: a 2 s cap)', () => {
    expect([1, 3, 5, 20, 1000].map(redisReconnectDelayMs)).toEqual([100, 300, 500, 500, 500]);
    expect(redisClientOptions({}).retryStrategy).toBe(redisReconnectDelayMs);
    expect(redisClusterOptions({ nodes: [{ host: '127.0.0.1', port: 1 }], tls: false }, {}).clusterRetryStrategy).toBe(
      redisReconnectDelayMs,
    );
  });

  it('reports every call unavailable while Redis is down, then recovers with the data kept', async () => {
    const store = await connect();
    await store.upsertUsers([user]);
    await store.upsertItems([item]);
    await expect(store.recordEvents([click('e1')])).resolves.toEqual({ accepted: 1, duplicates: 0 });
    const popularBefore = await store.popular(10, Date.now());
    expect(popularBefore.map((p) => p.itemId)).toEqual(['i1']);

    await stopServer();

    const calls: Record<string, () => Promise<unknown>> = {
      ping: () => store.ping(),
      getUser: () => store.getUser('u1', 10),
      getItems: () => store.getItems(['i1']),
      upsertUsers: () => store.upsertUsers([user]),
      upsertItems: () => store.upsertItems([item]),
      recordEvents: () => store.recordEvents([click('e2')]),
      popular: () => store.popular(10, Date.now()),
    };
    for (const [name, call] of Object.entries(calls)) {
      const error = await failureOf(call());
      expect({ name, error }).toEqual({ name, error: expect.any(StoreUnavailableError) });
      expect(error.message).toContain(`Redis at 127.0.0.1:${server.port} is unreachable`);
    }
    // Once a reconnect attempt has failed, the message says why.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await failureOf(store.ping())).message).toMatch(/ECONNREFUSED/);

    await resumeServer();
    await waitUntilAvailable(store);

    const { user: gotUser, history } = await store.getUser('u1', 10);
    expect(gotUser?.features?.values.country?.kind.value).toBe('SE');
    expect(history.map((h) => h.itemId)).toEqual(['i1']);
    expect((await store.getItems(['i1']))[0]?.category).toBe('books');
    await expect(store.popular(10, Date.now())).resolves.toEqual([{ itemId: 'i1', score: expect.closeTo(popularBefore[0]!.score, 3) }]);
    // The event that failed while Redis was down was never applied; the first one is still known.
    await expect(store.recordEvents([click('e1'), click('e2')])).resolves.toEqual({ accepted: 1, duplicates: 1 });
  });

  it('starts while Redis is down, reports unavailable, then works once Redis is up', async () => {
    await stopServer();
    const store = await connect();

    const error = await failureOf(store.getItems(['i1']));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toBe(`Redis at 127.0.0.1:${server.port} is unreachable: connect ECONNREFUSED 127.0.0.1:${server.port}`);

    await resumeServer();
    await waitUntilAvailable(store);
    await store.upsertItems([create(features.ItemSchema, { itemId: 'late', category: 'games' })]);
    expect((await store.getItems(['late']))[0]?.category).toBe('games');
  });

  it('reports a Redis that does not answer in time as unavailable, and carries on after', async () => {
    const store = await connect({ commandTimeoutMs: 200 });
    await store.upsertItems([item]);
    const admin = new Redis(server.url);
    try {
      // CLIENT PAUSE holds every client's commands: Redis is up but silent.
      await admin.call('CLIENT', 'PAUSE', '1000', 'ALL');
      const error = await failureOf(store.getItems(['i1']));
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toBe(`Redis at 127.0.0.1:${server.port} is unreachable: no answer within 200 ms`);
      await waitUntilAvailable(store);
      expect((await store.getItems(['i1']))[0]?.itemId).toBe('i1');
    } finally {
      admin.disconnect();
    }
  });

  it('fails a call that is in flight when Redis goes away instead of holding it', async () => {
    const store = await connect({ commandTimeoutMs: 20_000 });
    // No reconnecting for the admin client: it goes down with the server.
    const admin = new Redis(server.url, { retryStrategy: () => null });
    admin.on('error', () => undefined);
    // Hold the call in Redis, then take Redis down under it.
    await admin.call('CLIENT', 'PAUSE', '10000', 'ALL');
    const inFlight = failureOf(store.getItems(['i1']));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await stopServer();
    const error = await inFlight;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toContain(`Redis at 127.0.0.1:${server.port} is unreachable`);

    await resumeServer();
    await waitUntilAvailable(store);
    await expect(store.getItems(['i1'])).resolves.toHaveLength(1);
  });

  it('reports a closed store as unavailable', async () => {
    const store = await connect();
    await store.close();
    const error = await failureOf(store.ping());
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.message).toContain(`127.0.0.1:${server.port}`);
    await expect(store.close()).resolves.toBeUndefined();
  });

  it('keeps the documented key layout under the key prefix', async () => {
    const store = await RedisFeatureStore.connect(server.url, { ...options, keyPrefix: 'layout:' });
    stores.push(store);
    await store.upsertUsers([user]);
    await store.upsertItems([item]);
    await store.recordEvents([click('layout-e1')]);
    const admin = new Redis(server.url);
    try {
      const rawUser = await admin.getBuffer('layout:u:u1');
      expect(fromBinary(features.UserSchema, rawUser!).userId).toBe('u1');
      const rawItem = await admin.getBuffer('layout:i:i1');
      expect(fromBinary(features.ItemSchema, rawItem!).category).toBe('books');
      expect(await admin.llen('layout:h:u1')).toBe(1);
      expect(await admin.zrange('layout:pop', 0, -1)).toEqual(['i1']);
      expect(await admin.pttl('layout:e:layout-e1')).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
    }
  });
});
