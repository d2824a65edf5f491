import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { status, type ServiceError } from '@grpc/grpc-js';
import { common, features, reranking } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { loadRerankingConfig } from './config.js';
import { startRerankingService } from './reranking-app.js';

const RULES = `
rules:
  - rule: drop_seen
    event_types: [view, purchase]
  - rule: block
    categories: [gambling]
  - rule: boost_new
    max_age_hours: 24
    multiply: 2
  - rule: diversity
    kind: category_window
    window: 2
    max_per_category: 1
  - rule: pin
    pins:
      - { item_id: promo, position: 2, insert: true }
`;

type RerankInit = MessageInitShape<typeof reranking.RerankRequestSchema>;

const HOUR = 3600_000;
const { EventType } = common;

describe('reranking service over gRPC, with the feature service on a real Redis', () => {
  let featureService: RunningGrpcService;
  let featureClient: ServiceClient<typeof features.FeatureService.method>;
  let service: RunningGrpcService;
  let client: ServiceClient<typeof reranking.RerankingService.method>;

  beforeAll(async () => {
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: run through jest, whose global setup starts redis-server');
    featureService = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `rr${randomUUID().slice(0, 8)}:` }),
      createLogger('features', 'silent'),
    );
    featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 5000 });
    const old = BigInt(Date.now() - 100 * 24 * HOUR);
    await featureClient.upsertItems({
      items: [
        { itemId: 'a1', category: 'art', createdAtMs: old },
        { itemId: 'a2', category: 'art', createdAtMs: old },
        { itemId: 'a3', category: 'art', createdAtMs: old },
        { itemId: 'g1', category: 'gambling', createdAtMs: old },
        { itemId: 'n1', category: 'news', createdAtMs: BigInt(Date.now() - HOUR) },
        { itemId: 's1', category: 'sport', createdAtMs: old },
        { itemId: 'promo', category: 'ads', createdAtMs: old },
      ],
    });
    const rulesFile = join(mkdtempSync(join(tmpdir(), 'recsys-rules-')), 'rules.yaml');
    writeFileSync(rulesFile, RULES);
    const config = loadRerankingConfig({
      GRPC_PORT: '0',
      FEATURES_ADDRESS: featureService.address,
      // Generous: a loaded CI machine must not turn a slow read into a degraded answer.
      FEATURES_TIMEOUT_MS: '5000',
      RERANKING_RULES_FILE: rulesFile,
      DEFAULT_LIMIT: '3',
      MAX_LIMIT: '50',
      MAX_CANDIDATES: '20',
    });
    service = await startRerankingService(config, createLogger('reranking', 'silent'));
    client = createServiceClient(reranking.RerankingService, service.address, { defaultTimeoutMs: 10000 });
  });

  afterAll(async () => {
    client.close();
    featureClient.close();
    await service.close();
    await featureService.close();
  });

  const rerank = (userId: string, itemIds: string[], extra: Pick<RerankInit, 'context' | 'disabledRules'> = {}) =>
    client.rerank({
      userId,
      candidates: itemIds.map((itemId, i) => ({ itemId, score: 1 - i / 20, channels: ['two_tower'] })),
      limit: 20,
      ...extra,
    });

  it('drops what the user viewed or bought, from the stored history and the request context, and reports them', async () => {
    const userId = `u-${randomUUID()}`;
    const event = (itemId: string, eventType: common.EventType) => ({ eventId: randomUUID(), userId, itemId, eventType });
    await featureClient.recordFeedback({
      events: [event('x1', EventType.VIEW), event('x3', EventType.PURCHASE), event('x5', EventType.CLICK)],
    });
    const response = await rerank(userId, ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7'], {
      context: { recentItems: [{ itemId: 'x7', eventType: EventType.VIEW }] },
      disabledRules: ['pin'],
    });
    // x5 was only clicked: clicks are not configured as "seen".
    expect(response.candidates.map((c) => c.itemId)).toEqual(['x2', 'x4', 'x5', 'x6']);
    const dropSeen = response.rules.find((r) => r.rule === 'drop_seen')!;
    expect(dropSeen.removedItemIds).toEqual(['x1', 'x3', 'x7']);
    expect(dropSeen.error).toBe('');
    expect(dropSeen.detail).toBe('dropped 3 seen items (3 history entries, 1 context items)');
    expect(response.rules.map((r) => r.rule)).toEqual(['drop_seen', 'block', 'boost_new', 'diversity', 'pin']);
    expect(response.rules.find((r) => r.rule === 'pin')!.error).toBe('disabled by the request');
  });

  it('boosts new items by their stored age, blocks and diversifies by stored categories, pins, and scores the stage', async () => {
    const response = await client.rerank({
      userId: `u-${randomUUID()}`,
      candidates: [
        { itemId: 'a1', score: 0.9, stageScores: [{ stage: common.Stage.RANKING, score: 0.9 }] },
        { itemId: 'a2', score: 0.8 },
        { itemId: 'g1', score: 0.7 },
        { itemId: 'a3', score: 0.6 },
        { itemId: 'n1', score: 0.42, channels: ['popular'] },
        { itemId: 's1', score: 0.3, category: 'sport' },
      ],
      limit: 5,
    });
    expect(response.candidates.map((c) => [c.itemId, c.category])).toEqual([
      ['a1', 'art'],
      ['promo', 'ads'],
      ['n1', 'news'],
      ['a2', 'art'],
      ['s1', 'sport'],
    ]);
    const byId = new Map(response.candidates.map((c) => [c.itemId, c]));
    expect(byId.get('n1')!.score).toBeCloseTo(0.84, 5);
    expect(byId.get('n1')!.stageScores).toEqual([expect.objectContaining({ stage: common.Stage.RERANKING, score: byId.get('n1')!.score })]);
    expect(byId.get('a1')!.stageScores.map((s) => [s.stage, s.score])).toEqual([
      [common.Stage.RANKING, expect.closeTo(0.9, 5)],
      [common.Stage.RERANKING, expect.closeTo(0.9, 5)],
    ]);
    expect(byId.get('promo')!.channels).toEqual(['pin']);
    const report = Object.fromEntries(response.rules.map((r) => [r.rule, r]));
    expect(report.block!.removedItemIds).toEqual(['g1']);
    expect(report.boost_new!.changedItemIds).toEqual(['n1']);
    expect(report.diversity!.changedItemIds).toEqual(['s1']);
    expect(report.pin!.changedItemIds).toEqual(['promo']);
    expect(response.rules.every((r) => r.error === '' && r.durationMs >= 0)).toBe(true);
  });

  it('de-duplicates repeated candidates (reported), and answers the default limit for 0', async () => {
    const response = await client.rerank({
      userId: 'u-dup',
      candidates: [
        { itemId: 'y1', score: 0.9, channels: ['two_tower'] },
        { itemId: 'y2', score: 0.8 },
        { itemId: 'y1', score: 0.5, channels: ['popular'] },
        { itemId: 'y3', score: 0.4 },
        { itemId: 'y4', score: 0.3 },
      ],
      disabledRules: ['pin'],
    });
    expect(response.candidates.map((c) => c.itemId)).toEqual(['y1', 'y2', 'y3']);
    expect(response.candidates[0]!.channels).toEqual(['two_tower', 'popular']);
    expect(response.rules[0]).toMatchObject({ rule: 'dedupe', removedItemIds: ['y1'] });
    const empty = await client.rerank({ userId: 'u-empty', candidates: [], disabledRules: ['pin'] });
    expect(empty.candidates).toEqual([]);
  });

  it('refuses bad input with INVALID_ARGUMENT naming the field', async () => {
    const refusal = async (request: Parameters<typeof client.rerank>[0]) => {
      const error = (await client.rerank(request).then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError | undefined;
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      return error!.details;
    };
    const one = [{ itemId: 'a', score: 1 }];
    expect(await refusal({ userId: '', candidates: one })).toBe('user_id: must not be empty');
    expect(await refusal({ userId: 'u', candidates: [{ itemId: 'a' }, { itemId: '' }] })).toBe('candidates[1].item_id: must not be empty');
    expect(await refusal({ userId: 'u', candidates: [{ itemId: 'a', score: NaN }] })).toBe('candidates[0].score: must be a finite number');
    expect(await refusal({ userId: 'u', candidates: one, limit: 51 })).toBe('limit: must be at most 50 (0 or less means 3)');
    expect(await refusal({ userId: 'u', candidates: Array.from({ length: 21 }, (_, i) => ({ itemId: `i${i}` })) })).toBe(
      'candidates: at most 20 per call (got 21)',
    );
    expect(await refusal({ userId: 'u', candidates: one, disabledRules: ['shuffle', 'sort'] })).toBe(
      'disabled_rules[1]: unknown rule "sort"; configured rules are drop_seen, block, boost_new, diversity, pin, or a rule type',
    );
    expect(await refusal({ userId: 'u', candidates: one, context: { recentItems: [{ itemId: '' }] } })).toBe(
      'context.recent_items[0].item_id: must not be empty',
    );
    // Found by test:resilience's fuzz: a time no Date holds made the dated rules fail (skipped, reported) instead.
    expect(await refusal({ userId: 'u', candidates: one, context: { requestTimeMs: 9_000_000_000_000_000n } })).toBe(
      'context.request_time_ms: must be Unix milliseconds from 0 to 8640000000000000 (0 means unknown / now)',
    );
  });

  it('with the feature service stopped, still answers: context items dropped, each failure reported and counted', async () => {
    await featureService.close();
    const response = await client.rerank({
      userId: 'u-outage',
      candidates: [
        { itemId: 'a1', score: 0.9 },
        { itemId: 'z1', score: 0.8 },
        { itemId: 'a2', score: 0.7 },
      ],
      context: { recentItems: [{ itemId: 'z1', eventType: EventType.VIEW }] },
    });
    expect(response.candidates.map((c) => c.itemId)).toEqual(['a1', 'promo', 'a2']);
    const report = Object.fromEntries(response.rules.map((r) => [r.rule, r]));
    expect(report.drop_seen!.removedItemIds).toEqual(['z1']);
    expect(report.drop_seen!.error).toMatch(
      /^reading the user history failed: 14 UNAVAILABLE: .*\(after 2 tries\); only the request context's items were dropped$/,
    );
    expect(report.boost_new!.error).toContain('reading item features failed: 14 UNAVAILABLE');
    expect(report.diversity!.error).toContain('items without a category were not limited');
    const metrics = await service.metrics.registry.metrics();
    expect(metrics).toMatch(/reranking_rule_errors_total\{rule="drop_seen",service="reranking"\} 1\n/);
    expect(metrics).toMatch(/reranking_feature_read_failures_total\{method="GetUserFeatures",service="reranking"\} 1\n/);
    expect(metrics).toMatch(/reranking_feature_read_failures_total\{method="BatchGetItemFeatures",service="reranking"\} 1\n/);
    expect(metrics).toMatch(/reranking_rule_removed_items_total\{rule="drop_seen",service="reranking"\} 4\n/);
  });
});
