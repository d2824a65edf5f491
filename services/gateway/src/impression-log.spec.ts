import { randomUUID } from 'node:crypto';
import { common, features, gateway } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, freePort, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { RedisServer } from '@recsys/testing';
import { loadGatewayConfig } from './config.js';
import { startGatewayService, type RunningGateway } from './gateway-app.js';

const silent = createLogger('test', 'silent');
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * The impression log through real gRPC: the gateway (stages absent, so answers come from the popular fallback) sends
 * each answer to a real feature service on a Redis of this file's own, which the test stops and starts again.
 */
describe('gateway impression log', () => {
  let redis: RedisServer;
  let featureService: RunningGrpcService;
  let featureClient: ServiceClient<typeof features.FeatureService.method>;
  const popular = Array.from({ length: 20 }, (_, i) => `item-${i + 1}`);

  async function startGateway(extra: Record<string, string> = {}): Promise<RunningGateway> {
    const service = await startGatewayService(
      loadGatewayConfig({
        GRPC_PORT: '0',
        HTTP_PORT: '-1',
        AUTH_DISABLED: 'true',
        LOG_LEVEL: 'silent',
        FEATURES_ADDRESS: featureService.address,
        RETRIEVAL_ADDRESS: `127.0.0.1:${await freePort()}`,
        PRERANKING_ADDRESS: `127.0.0.1:${await freePort()}`,
        RANKING_ADDRESS: `127.0.0.1:${await freePort()}`,
        RERANKING_ADDRESS: `127.0.0.1:${await freePort()}`,
        FEATURES_TIMEOUT_MS: '2000',
        BUDGET_DEFAULT_MS: '3000',
        BUDGET_MAX_MS: '5000',
        IMPRESSION_LOG_FLUSH_MS: '20',
        ...extra,
      }),
      silent,
    );
    for (let i = 0; i < 100; i++) {
      const text = await service.metrics.registry.getSingleMetricAsString('gateway_popular_fallback_refreshes_total');
      if (/outcome="ok"[^}]*\} [1-9]/.test(text)) return service;
      await sleep(50);
    }
    throw new Error('the popular fallback list was never refreshed');
  }

  async function counter(service: RunningGateway, name: string, reason?: string): Promise<number> {
    const text = await service.metrics.registry.getSingleMetricAsString(name);
    const line = text.split('\n').find((l) => l.startsWith(name) && (reason === undefined || l.includes(`reason="${reason}"`)));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  async function logged(requestId: string, timeoutMs = 10_000): Promise<features.Impression | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const { entries } = await featureClient.readEventLog({ limit: 5000 });
        const found = entries.find((e) => e.event.case === 'impression' && e.event.value.requestId === requestId);
        if (found) return found.event.value as features.Impression;
      } catch {
        // Redis on its way back.
      }
      await sleep(50);
    }
    return undefined;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    featureService = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redis.url, REDIS_KEY_PREFIX: `il${randomUUID().slice(0, 6)}:` }),
      silent,
    );
    featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 5000 });
    // Popularity counts only items the catalogue holds.
    await featureClient.upsertItems({ items: popular.map((itemId) => ({ itemId, category: 'c' })) });
    await featureClient.recordFeedback({
      events: popular.map((itemId) => ({ eventId: randomUUID(), userId: 'someone', itemId, eventType: common.EventType.VIEW })),
    });
  });

  afterAll(async () => {
    featureClient?.close();
    await featureService?.close();
    await redis?.destroy();
  });

  it('logs each answer with its items, positions, scores and degradations; losing Redis drops log entries (counted), never answers', async () => {
    const service = await startGateway();
    const client = createServiceClient(gateway.GatewayService, service.address, { defaultTimeoutMs: 10_000 });
    try {
      const answer = await client.recommend({ userId: 'u1', k: 5 });
      expect(answer.items).toHaveLength(5);
      const impression = await logged(answer.requestId);
      expect(impression).toMatchObject({
        requestId: answer.requestId,
        userId: 'u1',
        // No stage answered: no versions to report.
        versions: { retrievalModel: '', index: '', prerankingModel: '', rankingModel: '' },
      });
      expect(impression!.items.map((i) => [i.itemId, i.position, i.score])).toEqual(
        answer.items.map((item, p) => [item.itemId, p, item.score]),
      );
      expect(impression!.degradations.map((d) => [d.stage, d.fallback])).toEqual(answer.degradations.map((d) => [d.stage, d.fallback]));
      expect(impression!.degradations.length).toBeGreaterThan(0);
      for (let i = 0; i < 100 && (await counter(service, 'gateway_impressions_logged_total')) < 1; i++) await sleep(20);
      expect(await counter(service, 'gateway_impressions_logged_total')).toBeGreaterThanOrEqual(1);

      await redis.stop();
      try {
        for (let i = 0; i < 5; i++) {
          const served = await client.recommend({ userId: `down-${i}`, k: 5 });
          expect(served.items).toHaveLength(5);
        }
        const deadline = Date.now() + 10_000;
        while ((await counter(service, 'gateway_impressions_dropped_total', 'write_failed')) < 5 && Date.now() < deadline) await sleep(50);
        expect(await counter(service, 'gateway_impressions_dropped_total', 'write_failed')).toBeGreaterThanOrEqual(5);
      } finally {
        await redis.resume();
      }
      // Back: answers are logged again.
      let again: features.Impression | undefined;
      for (let i = 0; i < 20 && !again; i++) {
        const served = await client.recommend({ userId: 'back', k: 5 });
        again = await logged(served.requestId, 1000);
      }
      expect(again).toBeDefined();
      // Cost per answer of logging, as bench:pipeline reads it.
      const p99 = await counter(service, 'gateway_impression_log_write_ms_p99');
      expect(p99).toBeGreaterThan(0);
    } finally {
      client.close();
      await service.close();
    }
  });

  it('drops answers beyond a full queue (counted) and sends what is queued when it stops', async () => {
    const service = await startGateway({ IMPRESSION_LOG_MAX_QUEUE: '1', IMPRESSION_LOG_FLUSH_MS: '60000' });
    const client = createServiceClient(gateway.GatewayService, service.address, { defaultTimeoutMs: 10_000 });
    const answers: string[] = [];
    try {
      for (let i = 0; i < 3; i++) answers.push((await client.recommend({ userId: `q${i}`, k: 3 })).requestId);
      expect(await counter(service, 'gateway_impressions_dropped_total', 'queue_full')).toBe(2);
    } finally {
      client.close();
      await service.close();
    }
    expect(await logged(answers[0]!)).toBeDefined();
    const { entries } = await featureClient.readEventLog({ limit: 5000 });
    const requestIds = entries.flatMap((e) => (e.event.case === 'impression' ? [e.event.value.requestId] : []));
    expect(requestIds).not.toContain(answers[1]);
    expect(requestIds).not.toContain(answers[2]);
  });
});
