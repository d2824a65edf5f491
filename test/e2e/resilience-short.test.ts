// The short form of the resilience suite's overload parts, inside the normal test run (seconds once the pipeline is up):
// admission control shedding a burst past a small capacity on both transports, and the per-key rate limit shared by two
// gateway processes through one real Redis. The short fuzz pass runs once, in test:resilience's short form
// (test/integration/resilience-suite-short.test.ts). The full forms: pnpm test:fuzz, pnpm test:overload.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { gateway } from '@recsys/contracts';
import { loadGatewayConfig, startGatewayService, type RunningGateway } from '@recsys/gateway';
import { startPipeline, type RunningPipeline } from '@recsys/pipeline';
import { createLogger, createServiceClient, freePort } from '@recsys/service-kit';
import { builtEntry, startNode, trainedModels } from '@recsys/testing';

jest.setTimeout(120_000);

const API_KEY = randomBytes(16).toString('hex');
let pipeline: RunningPipeline;
let workDir: string;

beforeAll(async () => {
  const models = await trainedModels();
  workDir = mkdtempSync(join(tmpdir(), 'recsys-resilience-short-'));
  pipeline = await startPipeline({
    workDir,
    modelsDir: models.root,
    redisUrl: process.env.REDIS_TEST_URL,
    ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
    env: {
      // The stages serve the gateways the tests start; the pipeline's own gateway takes no calls here.
      features: { REDIS_KEY_PREFIX: `resilience-${randomUUID().slice(0, 8)}:` },
    },
  });
}, 180_000);

afterAll(async () => {
  await pipeline?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, 60_000);

describe('admission control past saturation', () => {
  let small: RunningGateway;

  beforeAll(async () => {
    const config = loadGatewayConfig({
      GRPC_PORT: '0',
      HTTP_PORT: '0',
      METRICS_PORT: '-1',
      API_KEYS: `shed:${API_KEY}`,
      RATE_LIMIT_PER_SECOND: '0',
      ADMISSION_MAX_IN_FLIGHT: '2',
      ADMISSION_MAX_QUEUE: '2',
      ADMISSION_QUEUE_TIMEOUT_MS: '20',
      ADMISSION_MAX_EVENT_LOOP_LAG_MS: '0',
      BUDGET_DEFAULT_MS: '3000',
      BUDGET_MAX_MS: '5000',
      FEATURES_ADDRESS: pipeline.addresses.features,
      RETRIEVAL_ADDRESS: pipeline.addresses.retrieval,
      PRERANKING_ADDRESS: pipeline.addresses.preranking,
      RANKING_ADDRESS: pipeline.addresses.ranking,
      RERANKING_ADDRESS: pipeline.addresses.reranking,
    });
    small = await startGatewayService(config, createLogger('gateway', 'silent'));
  });
  afterAll(() => small?.close());

  it('sheds the burst beyond in-flight + queue with 429 + Retry-After and RESOURCE_EXHAUSTED, answers the rest, no 5xx', async () => {
    const rest = Array.from({ length: 30 }, (_, i) =>
      fetch(`http://127.0.0.1:${small.httpPort}/v1/recommendations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user_id: `user-${i + 1}`, k: 5 }),
      }).then(async (response) => ({
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        body: (await response.json()) as { error?: { code: string; message: string } },
      })),
    );
    const client = createServiceClient(gateway.GatewayService, small.address, { defaultTimeoutMs: 10_000 });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${API_KEY}`);
    const grpc = Array.from({ length: 15 }, (_, i) =>
      client.recommend({ userId: `user-${i + 1}`, k: 5 }, { metadata }).then(
        () => status.OK,
        (error: { code: status }) => error.code,
      ),
    );
    const [restAnswers, grpcCodes] = await Promise.all([Promise.all(rest), Promise.all(grpc)]);
    client.close();

    const shed = restAnswers.filter((a) => a.status === 429);
    expect(restAnswers.filter((a) => a.status !== 200 && a.status !== 429)).toEqual([]);
    expect(restAnswers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(2);
    expect(shed.length).toBeGreaterThan(0);
    for (const answer of shed) {
      expect(answer.retryAfter).toBe('1');
      expect(answer.body.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('overloaded') });
    }
    expect(grpcCodes.filter((code) => code !== status.OK && code !== status.RESOURCE_EXHAUSTED)).toEqual([]);
    expect(grpcCodes).toContain(status.RESOURCE_EXHAUSTED);
    const metrics = await small.metrics.registry.getSingleMetricAsString('gateway_shed_total');
    const counted = [...metrics.matchAll(/gateway_shed_total\{[^}]*\} (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(counted).toBe(shed.length + grpcCodes.filter((code) => code === status.RESOURCE_EXHAUSTED).length);
    // Once the burst is over, the gateway answers again.
    expect(small.admission.running).toBe(0);
  });
});

it('a per-key rate limit holds across two gateway processes sharing one Redis', async () => {
  const burst = 8;
  // A key name of its own: the limiter's buckets live in the Redis other test files share.
  const keyName = `shared-${randomUUID().slice(0, 8)}`;
  const gateways = await Promise.all(
    [0, 1].map(async () => {
      const httpPort = await freePort('127.0.0.1');
      const started = startNode(builtEntry('services/gateway/dist/main.js'), {
        GRPC_PORT: '0',
        HTTP_PORT: String(httpPort),
        METRICS_PORT: '-1',
        LOG_LEVEL: 'warn',
        API_KEYS: `${keyName}:${API_KEY}`,
        // A slow refill: the test's requests spend the burst, the refill during the test adds at most a few.
        RATE_LIMIT_PER_SECOND: '0.5',
        RATE_LIMIT_BURST: String(burst),
        RATE_LIMIT_REDIS_URL: process.env.REDIS_TEST_URL!,
        FEATURES_ADDRESS: pipeline.addresses.features,
        RETRIEVAL_ADDRESS: pipeline.addresses.retrieval,
        PRERANKING_ADDRESS: pipeline.addresses.preranking,
        RANKING_ADDRESS: pipeline.addresses.ranking,
        RERANKING_ADDRESS: pipeline.addresses.reranking,
      });
      return { ...started, url: `http://127.0.0.1:${httpPort}` };
    }),
  );
  try {
    for (const g of gateways) {
      const until = Date.now() + 60_000;
      for (;;) {
        const up = await fetch(`${g.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (up) break;
        if (Date.now() > until) throw new Error(`gateway did not start: ${g.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const started = Date.now();
    const statuses: number[] = [];
    // Alternating between the replicas; an empty feedback body is refused (400) after the rate limit, cheaply.
    for (let i = 0; i < 30; i++) {
      const response = await fetch(`${gateways[i % 2]!.url}/v1/feedback`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: '{"events":[]}',
      });
      statuses.push(response.status);
    }
    const elapsedS = (Date.now() - started) / 1000;
    const admitted = statuses.filter((s) => s !== 429).length;
    expect(statuses.filter((s) => s !== 429 && s !== 400)).toEqual([]);
    // One bucket for both: the burst plus what refilled meanwhile, where two in-memory limiters would admit 2 x burst.
    expect(admitted).toBeGreaterThanOrEqual(burst);
    expect(admitted).toBeLessThanOrEqual(burst + Math.ceil(elapsedS * 0.5) + 1);
    expect(admitted).toBeLessThan(2 * burst);
  } finally {
    for (const g of gateways) g.child.kill('SIGTERM');
    await Promise.all(gateways.map((g) => g.exited));
  }
});
