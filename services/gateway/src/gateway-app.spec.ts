import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { common, features, gateway } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { loadRerankingConfig, startRerankingService } from '@recsys/reranking';
import { createLogger, createServiceClient, freePort, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { loadGatewayConfig } from './config.js';
import { startGatewayService, type RunningGateway } from './gateway-app.js';

const { Stage, DegradationCause, EventType } = common;
const silent = createLogger('test', 'silent');

/**
 * The gateway in this process over real gRPC, with a real feature service (on the test Redis) and a real
 * re-ranking service; retrieval, pre-ranking and ranking are really absent (nothing listens on their ports),
 * which is what a crashed stage looks like to the gateway.
 */
describe('gateway with stages down: fallbacks, never a failed request', () => {
  let featureService: RunningGrpcService | undefined;
  let rerankingService: RunningGrpcService;
  let gatewayService: RunningGateway;
  let client: ServiceClient<typeof gateway.GatewayService.method>;
  const user = `u-${randomUUID()}`;
  const popular = Array.from({ length: 30 }, (_, i) => `pop-${i + 1}`);
  const prefix = `g${randomUUID().slice(0, 8)}:`;
  const startFeatures = () =>
    startFeatureService(loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: process.env.REDIS_TEST_URL!, REDIS_KEY_PREFIX: prefix }), silent);

  async function gatewayEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return {
      GRPC_PORT: '0',
      HTTP_PORT: '-1',
      AUTH_DISABLED: 'true',
      LOG_LEVEL: 'silent',
      FEATURES_ADDRESS: featureService!.address,
      RERANKING_ADDRESS: rerankingService.address,
      RETRIEVAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      PRERANKING_ADDRESS: `127.0.0.1:${await freePort()}`,
      RANKING_ADDRESS: `127.0.0.1:${await freePort()}`,
      FEATURES_TIMEOUT_MS: '2000',
      // A first refresh of the popular fallback that fails on a loaded machine is tried again within the wait of
      // refreshed(), not 10 s later (the default).
      POPULAR_REFRESH_MS: '500',
      BUDGET_DEFAULT_MS: '3000',
      BUDGET_MAX_MS: '5000',
      ...extra,
    };
  }

  async function refreshed(service: RunningGateway): Promise<void> {
    // The popular list is fetched in the background at start; wait until it has been.
    for (let i = 0; i < 100; i++) {
      const text = await service.metrics.registry.getSingleMetricAsString('gateway_popular_fallback_refreshes_total');
      if (/outcome="ok"[^}]*\} [1-9]/.test(text)) return;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error('the popular fallback list was never refreshed');
  }

  beforeAll(async () => {
    featureService = await startFeatures();
    const features0 = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 5000 });
    // Popularity: pop-k has 31 - k views; the user viewed pop-1 and bought pop-2 (weight 4), so pop-2 leads.
    const events = popular.flatMap((itemId, i) =>
      Array.from({ length: popular.length - i }, () => ({
        eventId: randomUUID(),
        userId: `other-${i}`,
        itemId,
        eventType: EventType.VIEW,
      })),
    );
    events.push(
      { eventId: randomUUID(), userId: user, itemId: 'pop-1', eventType: EventType.VIEW },
      { eventId: randomUUID(), userId: user, itemId: 'pop-2', eventType: EventType.PURCHASE },
    );
    // Items the catalogue holds: feedback for unknown items adds no popularity.
    await features0.upsertItems({ items: popular.map((itemId) => ({ itemId })) });
    await features0.recordFeedback({ events });
    features0.close();
    rerankingService = await startRerankingService(
      loadRerankingConfig({ GRPC_PORT: '0', FEATURES_ADDRESS: featureService.address, FEATURES_TIMEOUT_MS: '2000' }),
      silent,
    );
    gatewayService = await startGatewayService(loadGatewayConfig(await gatewayEnv()), silent);
    client = createServiceClient(gateway.GatewayService, gatewayService.address, { defaultTimeoutMs: 10000 });
    await refreshed(gatewayService);
  });

  afterAll(async () => {
    client?.close();
    await gatewayService?.close();
    await rerankingService?.close();
    await featureService?.close();
  });

  const context = { recentItems: [{ itemId: 'pop-3', eventType: EventType.VIEW }] };

  // Regression (resilience review): the gateway's gRPC took messages up to 64 MiB where REST stops at MAX_BODY_BYTES.
  it('refuses a gRPC request over MAX_BODY_BYTES with RESOURCE_EXHAUSTED, as REST answers 413', async () => {
    await expect(client.recommend({ userId: 'u'.repeat(300 * 1024), k: 5 })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((await client.recommend({ userId: user, k: 5 })).items.length).toBeGreaterThan(0);
  });

  // Regression (resilience fuzz): the feature service's own refusal of a client's event was answered UNAVAILABLE (503).
  it('answers a feedback event the feature service refuses with INVALID_ARGUMENT naming the field', async () => {
    const future = BigInt(Date.now() + 3 * 86_400_000);
    await expect(
      client.sendFeedback({ events: [{ userId: user, itemId: 'pop-1', eventType: EventType.CLICK, timestampMs: future }] }),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/^events\[0\]\.timestamp_ms: .*future/) });
  });

  it('answers popular items when retrieval is down, in retrieval order past the missing pre-ranking and ranking, re-ranked', async () => {
    const answer = await client.recommend({ userId: user, k: 10, context, debug: true });
    const ids = answer.items.map((item) => item.itemId);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
    for (const id of ids) expect(popular).toContain(id);
    // Seen (history) and context items never come back: re-ranking dropped the history, the context was excluded.
    expect(ids).not.toContain('pop-1');
    expect(ids).not.toContain('pop-2');
    expect(ids).not.toContain('pop-3');
    expect(answer.degradations.map((d) => [Stage[d.stage], DegradationCause[d.cause], d.fallback])).toEqual([
      ['RETRIEVAL', 'UNAVAILABLE', 'popular items'],
      ['PRERANKING', 'UNAVAILABLE', 'retrieval order'],
      ['RANKING', 'UNAVAILABLE', 'pre-ranking order'],
    ]);
    expect(answer.degradations[0]!.detail).toContain('retrieval');
    expect(answer.timings.map((t) => Stage[t.stage])).toEqual(['RETRIEVAL', 'PRERANKING', 'RANKING', 'RERANKING']);
    const rerankDebug = answer.debug.find((d) => d.stage === Stage.RERANKING)!;
    expect(rerankDebug.rules.find((r) => r.rule === 'drop_seen')!.removedItemIds).toEqual(expect.arrayContaining(['pop-1', 'pop-2']));
    expect(answer.debug.find((d) => d.stage === Stage.RETRIEVAL)!.candidates[0]!.channels).toEqual(['popular']);
    const metrics = await gatewayService.metrics.registry.getSingleMetricAsString('gateway_degradations_total');
    expect(metrics).toMatch(/\{(?=[^}]*stage="retrieval")(?=[^}]*cause="unavailable")[^}]*\} [1-9]/);
  });

  it('shrinks the ranked count when re-ranking runs over its latency target, and exports it', async () => {
    // A 1 ms target no re-ranking over gRPC with a feature read meets: every window of 10 calls is over it.
    const strict = await startGatewayService(
      loadGatewayConfig(await gatewayEnv({ TARGET_RERANKING_MS: '1', ADAPTIVE_WINDOW: '10', RANK_MAX: '100', RANK_MIN: '20' })),
      silent,
    );
    const strictClient = createServiceClient(gateway.GatewayService, strict.address, { defaultTimeoutMs: 10000 });
    try {
      await refreshed(strict);
      expect(strict.orchestrator.candidateCounts()).toMatchObject({ rank: 100 });
      for (let i = 0; i < 20; i++) await strictClient.recommend({ userId: user, k: 5 });
      expect(strict.orchestrator.candidateCounts()).toMatchObject({ rank: 56 });
      const gauge = await strict.metrics.registry.getSingleMetricAsString('gateway_candidate_count');
      expect(gauge).toMatch(/count="rank"[^}]*\} 56/);
    } finally {
      strictClient.close();
      await strict.close();
    }
  });

  it('answers the cached popular list when the feature service is down too, and nothing when a category filter cannot be honoured', async () => {
    await featureService!.close();
    featureService = undefined;
    const answer = await client.recommend({ userId: user, k: 5, context });
    const ids = answer.items.map((item) => item.itemId);
    // pop-3 is in the context; re-ranking could not read the history, so the seen pop-2 and pop-1 stay, in popularity order.
    expect(ids).toEqual(['pop-2', 'pop-1', 'pop-4', 'pop-5', 'pop-6']);
    expect(answer.degradations[0]).toMatchObject({ stage: Stage.RETRIEVAL, fallback: 'cached popular items' });

    const filtered = await client.recommend({ userId: user, k: 5, filter: { includeCategories: ['cat-1'] } });
    expect(filtered.items).toEqual([]);
    expect(filtered.degradations[0]!.fallback).toContain('no fallback');
  });

  it('skips every stage whose share of the budget is under the minimum, reporting BUDGET_EXHAUSTED', async () => {
    featureService = await startFeatures();
    const tight = await startGatewayService(loadGatewayConfig(await gatewayEnv({ MIN_STAGE_MS: '10000' })), silent);
    const tightClient = createServiceClient(gateway.GatewayService, tight.address, { defaultTimeoutMs: 10000 });
    try {
      await refreshed(tight);
      const answer = await tightClient.recommend({ userId: user, k: 5, context });
      expect(answer.degradations.map((d) => [Stage[d.stage], DegradationCause[d.cause]])).toEqual(
        ['RETRIEVAL', 'PRERANKING', 'RANKING', 'RERANKING'].map((stage) => [stage, 'BUDGET_EXHAUSTED']),
      );
      // No time for the live popular call either: the cached list, without the context item, in ranked (popularity) order.
      expect(answer.items.map((item) => item.itemId)).toEqual(['pop-2', 'pop-1', 'pop-4', 'pop-5', 'pop-6']);
      expect(answer.degradations[0]!.fallback).toBe('cached popular items');
    } finally {
      tightClient.close();
      await tight.close();
    }
  });
});
