// The funnel evaluation on a small real run: recsys-evaluate-pipeline's work (evaluatePipeline) starts every service as
// its own process with the feature store on the harness's real Redis (loaded with the train split only), asks the
// gateway over gRPC at three funnel settings, and writes funnel.json and funnel.html. Checked: a later stage never holds
// more of a user's held-out positives than an earlier one, each stage passed on what the request's funnel asked for,
// and the report files hold what they should.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGatewayConfig } from '@recsys/gateway';
import {
  type EvaluatePipelineResult,
  FUNNEL_STAGES,
  type FunnelSetting,
  evaluatePipeline,
  gatewayDefaultFunnel,
  settingLabel,
} from '@recsys/pipeline';
import { loadFeatures } from '@recsys/offline';
import { trainedModels } from '@recsys/testing';
import { startTestFeatureService } from '../harness/features';

jest.setTimeout(120_000);

const K = 10;
// The test catalogue has 200 items: the widest setting retrieves all of it, the narrowest passes k straight through.
const SETTINGS: FunnelSetting[] = [
  { retrieved: 200, preRanked: 100, ranked: 50 },
  { retrieved: 100, preRanked: 50, ranked: 20 },
  { retrieved: 40, preRanked: 20, ranked: K },
];

let workDir: string;
let result: EvaluatePipelineResult;

beforeAll(async () => {
  const models = await trainedModels();
  workDir = mkdtempSync(join(tmpdir(), 'recsys-funnel-'));
  result = await evaluatePipeline({
    workDir,
    modelsDir: models.root,
    redisUrl: process.env.REDIS_TEST_URL,
    // A key prefix of its own: other test files share this Redis.
    env: { features: { REDIS_KEY_PREFIX: `funnel-${randomUUID().slice(0, 8)}:` } },
    settings: SETTINGS,
    k: K,
    users: 12,
    // Roomy: this checks the funnel, not latency, on a busy 2-core machine.
    budgetMs: 3000,
    warmUp: 2,
    out: join(workDir, 'report'),
  });
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

test('no later stage holds more of a user held-out positives than an earlier one, at every setting', () => {
  expect(result.report.settings).toHaveLength(SETTINGS.length);
  for (const setting of SETTINGS) {
    const outcomes = result.outcomes.get(settingLabel(setting))!;
    expect(outcomes).toHaveLength(12);
    for (const o of outcomes) {
      const hits = FUNNEL_STAGES.map((stage) => o.hits[stage]);
      for (let i = 1; i < hits.length; i++) expect(hits[i]).toBeLessThanOrEqual(hits[i - 1]!);
      expect(hits[0]).toBeLessThanOrEqual(o.positives);
    }
  }
  for (const s of result.report.settings) {
    expect(s.non_monotone_users).toBe(0);
    expect(s.recall_preranking).toBeLessThanOrEqual(s.recall_retrieval);
    expect(s.recall_ranking).toBeLessThanOrEqual(s.recall_preranking);
    expect(s.recall_final).toBeLessThanOrEqual(s.recall_ranking);
  }
  // Held-out positives do reach the answers: the feature service's history left them unseen.
  const widest = result.report.settings[0]!;
  expect(widest.recall_retrieval).toBeGreaterThan(0.5);
  expect(widest.recall_final).toBeGreaterThan(0);
});

test("each stage passed on what the request's funnel asked for", () => {
  for (const [i, setting] of SETTINGS.entries()) {
    for (const o of result.outcomes.get(settingLabel(setting))!) {
      expect(o.degraded).toBe(false);
      expect(o.sizes.retrieval).toBeLessThanOrEqual(setting.retrieved);
      expect(o.sizes.retrieval).toBeGreaterThanOrEqual(setting.preRanked);
      expect(o.sizes.preranking).toBe(setting.preRanked);
      expect(o.sizes.ranking).toBe(setting.ranked);
      expect(o.sizes.final).toBe(K);
    }
    expect(result.report.settings[i]!.candidates_p50.preranking).toBe(setting.preRanked);
  }
});

test('funnel.json and funnel.html hold every setting, its recalls and its latency', () => {
  const json = JSON.parse(readFileSync(result.files.json, 'utf8')) as typeof result.report;
  expect(json.gateway.started_here).toBe(true);
  expect(json.users).toBe(12);
  for (const [i, s] of json.settings.entries()) {
    expect(s).toMatchObject({ retrieved: SETTINGS[i]!.retrieved, pre_ranked: SETTINGS[i]!.preRanked, ranked: SETTINGS[i]!.ranked, k: K });
    for (const key of ['recall_retrieval', 'recall_preranking', 'recall_ranking', 'recall_final', 'p50_ms', 'p95_ms', 'p99_ms'] as const) {
      expect(Number.isFinite(s[key])).toBe(true);
    }
    expect(s.p50_ms).toBeGreaterThan(0);
    expect(s.requests).toBe(12);
  }
  const html = readFileSync(result.files.html, 'utf8');
  expect(html.match(/<svg /g)).toHaveLength(3);
  for (const s of SETTINGS) expect(html).toContain(settingLabel(s));
});

test("the report's default setting is the gateway's own funnel with its default variables", () => {
  const config = loadGatewayConfig({ AUTH_DISABLED: 'true' });
  for (const k of [10, 20, 50]) {
    expect(gatewayDefaultFunnel(k)).toEqual({
      retrieved: config.adaptive.retrieveMax,
      preRanked: config.adaptive.rankMax,
      ranked: Math.max(k * config.rerankPool.factor, config.rerankPool.min),
    });
  }
});

test('a feature service whose history holds the held-out positives is refused, saying how to load it', async () => {
  const models = await trainedModels();
  // Loaded as recsys-up loads it for serving: every interaction, the test split's too.
  const featureService = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL! });
  try {
    await loadFeatures(featureService.client, models.setup, { history: 'all' });
    await expect(
      evaluatePipeline({
        // Never reached: the feature service is checked first.
        gateway: '127.0.0.1:1',
        features: featureService.service.address,
        modelsDir: models.root,
        settings: SETTINGS,
        k: K,
        users: 20,
        budgetMs: 1000,
        warmUp: 0,
        out: join(workDir, 'refused'),
      }),
    ).rejects.toThrow(/holds \d+ held-out positives as history .*recsys-load-features --history train/);
  } finally {
    await featureService.stop();
  }
});
