import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { gateway } from '@recsys/contracts';
import { type RunningPipeline, SERVICE_NAMES, startPipeline } from '@recsys/pipeline';
import { createServiceClient } from '@recsys/service-kit';
import { trainedModels } from '@recsys/testing';
import { type ReceivedSpan, SPAN_KIND, startOtlpCollectorDouble } from '../harness/otlp-collector-double';

const API_KEY = `key-${randomUUID()}`;

/** The gRPC method each stage is called with by the gateway. */
const STAGE_METHODS = {
  retrieval: 'recsys.retrieval.v1.RetrievalService/Retrieve',
  preranking: 'recsys.preranking.v1.PrerankingService/Prerank',
  ranking: 'recsys.ranking.v1.RankingService/Rank',
  reranking: 'recsys.reranking.v1.RerankingService/Rerank',
} as const;

/** Stages that run a model for each request, and the feature reads they make. */
const MODEL_STAGES = ['retrieval', 'preranking', 'ranking'] as const;

describe('tracing through the pipeline as processes (OTLP/HTTP protobuf to a collector double)', () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'recsys-tracing-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('follows one request from the caller through the gateway, every stage, their model runs and feature reads', async () => {
    const models = await trainedModels();
    const collector = await startOtlpCollectorDouble();
    // Spans leave each process at most 100 ms after they end.
    const otel = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
    const log: string[] = [];
    let pipeline: RunningPipeline | undefined;
    try {
      pipeline = await startPipeline({
        workDir,
        modelsDir: models.root,
        redisUrl: process.env.REDIS_TEST_URL,
        ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
        env: {
          features: { ...otel, REDIS_KEY_PREFIX: `tr${randomUUID().slice(0, 8)}:` },
          retrieval: otel,
          preranking: otel,
          ranking: otel,
          reranking: otel,
          // A budget no loaded test machine misses: the trace is about the calls, not their speed.
          gateway: { ...otel, API_KEYS: `tracing-test:${API_KEY}`, BUDGET_DEFAULT_MS: '10000', BUDGET_MAX_MS: '10000' },
        },
        log: (line) => log.push(line),
      });
      // Each service logs that it traces once it listens; the log is written asynchronously, so it may reach the
      // pipe a moment after the launcher saw the service answer.
      for (const name of SERVICE_NAMES) {
        const running = pipeline;
        const until = Date.now() + 10_000;
        while (!running.output(name).includes(`"tracing":"${name}"`) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        expect(running.output(name)).toContain(`"tracing":"${name}"`);
      }

      // The caller traces too: its traceparent makes the gateway's span its child.
      const traceId = randomBytes(16).toString('hex');
      const callerSpanId = randomBytes(8).toString('hex');
      const userId = models.setup.dataset.users.ids[3]!;
      const answer = await fetch(`${pipeline.httpUrl}/v1/recommendations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, traceparent: `00-${traceId}-${callerSpanId}-01` },
        body: JSON.stringify({ user_id: userId, k: 10, budget_ms: 10000 }),
      });
      expect(answer.status).toBe(200);
      const body = (await answer.json()) as { items: unknown[]; degradations: unknown[] };
      expect(body.degradations).toEqual([]);
      expect(body.items).toHaveLength(10);

      const inTrace = (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
      const complete = (spans: ReceivedSpan[]) => {
        const mine = inTrace(spans);
        const servers = new Set(mine.filter((s) => s.kind === SPAN_KIND.server).map((s) => s.service));
        return SERVICE_NAMES.every((name) => servers.has(name)) && mine.filter((s) => s.name.startsWith('model run')).length >= 3;
      };
      await collector.waitFor(complete, 15_000);
      const spans = inTrace(collector.spans);
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const parentOf = (span: ReceivedSpan) => byId.get(span.parentSpanId);
      const ancestors = (span: ReceivedSpan) => {
        const chain: ReceivedSpan[] = [];
        for (let p = parentOf(span); p; p = parentOf(p)) chain.push(p);
        return chain;
      };
      expect(collector.contentTypes.every((t) => t === 'application/x-protobuf')).toBe(true);

      // The gateway's REST span is the caller's child: the only span of the trace without a parent in it.
      const root = spans.find((s) => s.service === 'gateway' && s.kind === SPAN_KIND.server)!;
      expect(root).toMatchObject({ name: 'POST /v1/recommendations', parentSpanId: callerSpanId });
      expect(root.attributes).toMatchObject({ 'http.route': '/v1/recommendations', 'http.response.status_code': 200 });
      expect(spans.filter((s) => !byId.has(s.parentSpanId))).toEqual([root]);

      // A CLIENT span per stage call, child of the request's span; each stage's SERVER span is that call's child.
      for (const [stage, method] of Object.entries(STAGE_METHODS)) {
        const calls = spans.filter((s) => s.service === 'gateway' && s.kind === SPAN_KIND.client && s.name === method);
        expect({ stage, calls: calls.length }).toEqual({ stage, calls: 1 });
        const call = calls[0]!;
        expect(parentOf(call)).toBe(root);
        expect(call.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.grpc.status_code': 0 });
        const served = spans.filter((s) => s.service === stage && s.kind === SPAN_KIND.server);
        expect(served.map((s) => [s.name, s.parentSpanId])).toEqual([[method, call.spanId]]);
        expect(served[0]!.startNs).toBeGreaterThanOrEqual(call.startNs);
        expect(served[0]!.endNs).toBeLessThanOrEqual(call.endNs);
      }

      // A span per model run, inside the stage's own call; the stages' feature reads reach the feature service.
      let stageReads = 0;
      for (const stage of MODEL_STAGES) {
        const server = spans.find((s) => s.service === stage && s.kind === SPAN_KIND.server)!;
        const runs = spans.filter((s) => s.service === stage && s.name.startsWith('model run'));
        expect({ stage, runs: runs.length > 0 }).toEqual({ stage, runs: true });
        for (const run of runs) {
          expect(ancestors(run)).toContain(server);
          expect(run.attributes).toMatchObject({ 'recsys.model.provider': 'cpu' });
          expect(run.attributes['recsys.model.rows']).toBeGreaterThan(0);
        }
        // A stage whose item table and passed-down user hold everything it needs reads nothing; every read made is traced.
        const reads = spans.filter((s) => s.service === stage && s.kind === SPAN_KIND.client);
        stageReads += reads.length;
        for (const read of reads) {
          expect(read.name.startsWith('recsys.features.v1.FeatureService/')).toBe(true);
          expect(ancestors(read)).toContain(server);
          expect(spans.filter((s) => s.service === 'features' && s.parentSpanId === read.spanId)).toHaveLength(1);
        }
      }
      // The gateway read the user; the model stages still read what their tables lack (the user's deeper history).
      expect(stageReads).toBeGreaterThan(0);
      const ranking = spans.filter((s) => s.service === 'ranking' && s.name.startsWith('model run'));
      expect(ranking.map((s) => s.name)).toContain(`model run dlrm v${models.version}`);

      // The gRPC front door continues a caller's trace from the traceparent in its metadata.
      const grpcTrace = randomBytes(16).toString('hex');
      const grpcCaller = randomBytes(8).toString('hex');
      const client = createServiceClient(gateway.GatewayService, pipeline.addresses.gateway, { defaultTimeoutMs: 10_000 });
      try {
        const metadata = new Metadata();
        metadata.set('x-api-key', API_KEY);
        metadata.set('traceparent', `00-${grpcTrace}-${grpcCaller}-01`);
        // Outside a span of this process, the client forwards the caller's traceparent as it was set.
        await client.recommend({ userId, k: 5, budgetMs: 10000 }, { metadata });
      } finally {
        client.close();
      }
      const grpcServer = (all: ReceivedSpan[]) =>
        all.find((s) => s.traceId === grpcTrace && s.service === 'gateway' && s.kind === SPAN_KIND.server);
      await collector.waitFor((all) => grpcServer(all) !== undefined, 15_000);
      expect(grpcServer(collector.spans)).toMatchObject({ name: 'recsys.gateway.v1.GatewayService/Recommend', parentSpanId: grpcCaller });
    } finally {
      await pipeline?.close();
      await collector.close();
    }
  }, 120_000);
});
