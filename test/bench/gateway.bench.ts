// The whole pipeline through the gateway's REST API: every service as its own process (startPipeline, default
// synthetic data and the trainer's defaults, cached in BENCH_WORK_DIR), the feature store on a real Redis, auth
// off. One client sends BENCH_REQUESTS POST /v1/recommendations (k=20) for random users, one at a time: p50/p99
// end to end. The floor, from the same run and the same requests: the same models and index loaded here, and per
// request only the model and search work the pipeline did for it (user tower, index search for the retrieved
// count, pre-ranker over the retrieved candidates, DLRM over the ranked ones, inputs assembled beforehand), with
// each request's candidate sets taken from a debug answer of the same request. Then the same requests from
// BENCH_CONCURRENCY clients at once (throughput, degraded answers under load). Last line: one JSON object.
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPipeline, type RunningPipeline, type ServiceName } from '@recsys/pipeline';
import { loadModelVersion } from '@recsys/serving';
import { RedisServer } from '@recsys/testing';
import { loadSetup } from '@recsys/trainer';
import { FLOOR_PARTS, measureFloor } from './floor';
import { quantile, round, rssMiB } from './stats';
import { envNumber } from '../harness/script-env';

const REQUESTS = envNumber('BENCH_REQUESTS', 500);
const WARMUP = envNumber('BENCH_WARMUP', 50, 'whole');
const K = 20;
/** Clients of the concurrent phase (after the single-client one). */
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 8);
const WORK_DIR = process.env.BENCH_WORK_DIR ?? join(tmpdir(), 'recsys-bench-pipeline');
/** Trained models to use instead of training on the default synthetic data (the contract test passes small ones). */
const MODELS_DIR = process.env.BENCH_MODELS_DIR;
const SERVICES: readonly ServiceName[] = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'];
const STAGES = ['retrieval', 'preranking', 'ranking', 'reranking'] as const;

interface RecommendJson {
  items: { item_id: string }[];
  timings: { stage: string; duration_ms: number; candidates_out: number }[];
  degradations: { stage: string; cause: string }[];
  total_ms: number;
  debug: { stage: string; candidates: { item_id: string }[] }[];
}

const nowMs = () => performance.now();

/** Request i's user, drawn from a seed of its own (the same users in every run). */
function userFor(i: number, users: readonly string[]): string {
  const seed = (Math.imul(i + 1, 2654435761) + 12345) >>> 0;
  return users[((Math.imul(seed, 1103515245) + 12345) >>> 0) % users.length]!;
}

async function recommend(url: string, body: Record<string, unknown>): Promise<RecommendJson> {
  const response = await fetch(`${url}/v1/recommendations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST /v1/recommendations ${JSON.stringify(body)}: ${response.status} ${text}`);
  return JSON.parse(text) as RecommendJson;
}

async function main(): Promise<void> {
  const external = process.env.REDIS_URL;
  const redis = external ? undefined : await RedisServer.start();
  let pipeline: RunningPipeline | undefined;
  let summary: Record<string, number | string> | undefined;
  const started = nowMs();
  try {
    pipeline = await startPipeline({
      workDir: WORK_DIR,
      ...(MODELS_DIR ? { modelsDir: MODELS_DIR } : {}),
      redisUrl: external ?? redis!.url,
      ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
      // One client at full speed: the rate limiter would refuse it, and there is no key to limit.
      env: { gateway: { AUTH_DISABLED: 'true', RATE_LIMIT_PER_SECOND: '0' } },
      log: (line) => console.log(line),
    });
    const url = pipeline.httpUrl;
    console.log(
      `pipeline up in ${round((nowMs() - started) / 1000, 1)} s (models in ${pipeline.modelsDir}, index in ${pipeline.indexDir})`,
    );

    const dlrmVersion = await loadModelVersion(pipeline.modelsDir, 'dlrm');
    const users = loadSetup(dlrmVersion.manifest.data.source).dataset.users.ids;

    // Warm-up on users the measured requests do not ask for first.
    for (let i = 0; i < WARMUP; i++) await recommend(url, { user_id: userFor(REQUESTS + i, users), k: K });

    // Each request's candidate sets: what retrieval returned and what pre-ranking passed to ranking.
    const plans: { userId: string; retrieved: string[]; ranked: string[] }[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const userId = userFor(i, users);
      const answer = await recommend(url, { user_id: userId, k: K, debug: true });
      const stage = (name: string) => answer.debug.find((d) => d.stage === `STAGE_${name.toUpperCase()}`)?.candidates.map((c) => c.item_id);
      plans.push({ userId, retrieved: stage('retrieval') ?? [], ranked: stage('preranking') ?? [] });
    }

    // The measured requests, one at a time.
    const latencies: number[] = [];
    const stageMs: Record<string, number[]> = Object.fromEntries(STAGES.map((s) => [s, []]));
    const gatewayMs: number[] = [];
    let degraded = 0;
    const loopStarted = nowMs();
    for (let i = 0; i < REQUESTS; i++) {
      const t0 = nowMs();
      const answer = await recommend(url, { user_id: plans[i]!.userId, k: K });
      latencies.push(nowMs() - t0);
      if (answer.items.length !== K) throw new Error(`request ${i}: ${answer.items.length} items, expected ${K}`);
      if (answer.degradations.length > 0) degraded++;
      gatewayMs.push(answer.total_ms);
      for (const timing of answer.timings) stageMs[timing.stage.replace('STAGE_', '').toLowerCase()]?.push(timing.duration_ms);
    }
    const loopMs = nowMs() - loopStarted;

    // The same requests from CONCURRENCY clients at once: throughput, and what the budget and fallbacks do under load.
    const concurrentLatencies: number[] = [];
    let concurrentDegraded = 0;
    let next = 0;
    const concurrentStarted = nowMs();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < REQUESTS; i = next++) {
          const t0 = nowMs();
          const answer = await recommend(url, { user_id: plans[i]!.userId, k: K });
          concurrentLatencies.push(nowMs() - t0);
          if (answer.degradations.length > 0) concurrentDegraded++;
        }
      }),
    );
    const concurrentMs = nowMs() - concurrentStarted;
    const rss: Record<string, number> = {};
    for (const name of SERVICES) {
      const pid = pipeline.pid(name);
      rss[`${name}_rss_mib`] = pid === undefined ? Number.NaN : rssMiB(pid);
    }

    // The floor: the same models and index in this process, the same requests' inputs assembled beforehand.
    const { floor, parts } = await measureFloor(pipeline, plans, WARMUP);

    const p50 = quantile(latencies, 0.5);
    const floorP50 = quantile(floor, 0.5);
    const result: Record<string, number | string> = {
      requests: REQUESTS,
      k: K,
      users: users.length,
      p50_ms: round(p50),
      p99_ms: round(quantile(latencies, 0.99)),
      qps: round(REQUESTS / (loopMs / 1000), 1),
      gateway_total_p50_ms: round(quantile(gatewayMs, 0.5)),
      floor_p50_ms: round(floorP50),
      ratio_p50: round(p50 / floorP50, 3),
      degraded_requests: degraded,
      concurrency: CONCURRENCY,
      qps_concurrent: round(REQUESTS / (concurrentMs / 1000), 1),
      p50_ms_concurrent: round(quantile(concurrentLatencies, 0.5)),
      p99_ms_concurrent: round(quantile(concurrentLatencies, 0.99)),
      degraded_requests_concurrent: concurrentDegraded,
      cores: availableParallelism(),
      load_average_1m: round(loadavg()[0]!, 2),
      retrieved_p50: quantile(
        plans.map((p) => p.retrieved.length),
        0.5,
      ),
      ranked_p50: quantile(
        plans.map((p) => p.ranked.length),
        0.5,
      ),
    };
    for (const stage of STAGES) result[`${stage}_p50_ms`] = round(quantile(stageMs[stage]!, 0.5));
    for (const part of FLOOR_PARTS) result[`floor_${part}_p50_ms`] = round(quantile(parts[part], 0.5));
    Object.assign(result, rss);
    summary = result;
  } finally {
    await pipeline?.close();
    await redis?.destroy();
  }
  // After the services stopped, whose shutdown lines would otherwise follow: the JSON line is the last.
  const result = summary!;
  console.log(
    `REST end to end: p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, ${result.qps} requests/s (one client); ` +
      `stages p50: ${STAGES.map((s) => `${s} ${result[`${s}_p50_ms`]}`).join(', ')} ms`,
  );
  console.log(
    `${result.concurrency} clients: ${result.qps_concurrent} requests/s, p50 ${result.p50_ms_concurrent} ms, ` +
      `p99 ${result.p99_ms_concurrent} ms, ${result.degraded_requests_concurrent} of ${result.requests} answers degraded`,
  );
  console.log(
    `floor (models and search in process): p50 ${result.floor_p50_ms} ms (` +
      FLOOR_PARTS.map((p) => `${p} ${result[`floor_${p}_p50_ms`]}`).join(', ') +
      ` ms); end to end / floor: ${result.ratio_p50}`,
  );
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
