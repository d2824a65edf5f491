// The whole pipeline under load at a large catalogue, in both modes. A synthetic catalogue of BENCH_ITEMS items (1M by
// default; BENCH_USERS users) with a two-tower, pre-ranker and DLRM trained on it (trainRun through the launcher, cached
// in BENCH_WORK_DIR, default .recsys/bench-pipeline), a real redis-server on a free port, the default funnel (retrieve
// 1,000, rank 200, return 20). For each mode (every service its own process, then all in one process), load from
// separate processes: wrk (REST, test/bench/wrk/recommend.lua) and grpc-load.js (the gateway's gRPC) at 1, 8, 32 and
// 64 concurrent requests for BENCH_DURATION_S each: requests/s, p50/p95/p99, answers with a fallback, CPU ms per
// request of every pipeline process (/proc utime+stime over the level), gRPC and feature-service calls per request
// (grpc_server_handled_total deltas). The floor (user tower, index search, pre-ranker, DLRM of the same requests in
// this process) is measured in the same run. Writes a markdown table (BENCH_RESULTS, default
// test/bench/results/pipeline.md); the last line is one JSON object.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startPipeline, type PipelineMode, type RunningPipeline, type ServiceName } from '@recsys/pipeline';
import { repoRoot } from '@recsys/service-kit';
import { loadModelVersion } from '@recsys/serving';
import { RedisServer } from '@recsys/testing';
import { FLOOR_PARTS, measureFloor, type RequestPlan } from './floor';
import { cpuMsOf, handledCallsAt, quantile, round, rssMiB } from './stats';
import { eventLogCost, type EventLogCost } from './event-log-cost';
import { type LoadResult, type WrkCounts, wrkLoadResult } from './load-result';
import { envNumber } from '../harness/script-env';

const ITEMS = envNumber('BENCH_ITEMS', 1_000_000);
const USERS = envNumber('BENCH_USERS', 50_000);
const INTERACTIONS = envNumber('BENCH_INTERACTIONS', 20);
/** Epochs of each model: one pass over 800k impressions already takes minutes on two cores. */
const EPOCHS = envNumber('BENCH_EPOCHS', 1);
/** Seconds of load per level and generator. */
const DURATION_S = envNumber('BENCH_DURATION_S', 15, 'positive');
const WARMUP_S = envNumber('BENCH_WARMUP_S', 5, 'non-negative');
/** Seconds at rest after the warm-up over which each process's idle CPU is measured (timers, metrics, refreshes). */
const IDLE_S = envNumber('BENCH_IDLE_S', 5, 'positive');
/** Requests whose floor is measured (their candidate sets come from debug answers). */
const FLOOR_REQUESTS = envNumber('BENCH_FLOOR_REQUESTS', 200);
const MODES = (process.env.BENCH_MODES ?? 'split,all-in-one').split(',') as PipelineMode[];
const WORK_DIR = resolve(process.env.BENCH_WORK_DIR ?? join(repoRoot, '.recsys', 'bench-pipeline'));
/** Trained models to use instead of training (the contract test passes small ones). */
const MODELS_DIR = process.env.BENCH_MODELS_DIR;
const RESULTS = resolve(process.env.BENCH_RESULTS ?? join(repoRoot, 'test', 'bench', 'results', 'pipeline.md'));
const LEVELS = [1, 8, 32, 64] as const;
const K = 20;
/**
 * The funnel every level runs: the gateway's adaptive counts are off unless BENCH_ADAPTIVE=true, so that each level (and the
 * floor) measures 1,000 retrieved and 200 ranked rather than what the previous level's load shrank them to.
 */
const ADAPTIVE = process.env.BENCH_ADAPTIVE === 'true';
const FUNNEL = { RETRIEVE_MAX: '1000', RANK_MAX: '200', ADAPTIVE_CANDIDATES: String(ADAPTIVE) };
/**
 * The gateway's admission keeps the static in-flight limit (32, queue 64) the earlier runs had: this benchmark measures what
 * the pipeline answers at each level, while the adaptive limit (the default) sheds to hold latency, which `pnpm test:overload`
 * measures. ADMISSION_ADAPTIVE=true in the environment runs the default instead.
 */
const ADMISSION = { ADMISSION_ADAPTIVE: process.env.ADMISSION_ADAPTIVE === 'true' ? 'true' : 'false' };
/**
 * Settings of the all-in-one mode, whose one event loop runs every stage: retrieval's graph searches on a worker thread
 * (a second core for the largest piece of work) and the pre-ranking and ranking sessions on the event loop (no hand-off
 * to a thread per run; README's all-in-one section has the figures against the defaults). The split
 * mode runs the services' defaults (searches on the event loop, sessions on their own threads). A variable set in the
 * environment wins over these.
 */
const MODE_ENV: Record<PipelineMode, Partial<Record<ServiceName, Record<string, string>>>> = {
  split: {},
  'all-in-one': {
    retrieval: unlessSet({ INDEX_SEARCH_WORKERS: '1' }),
    preranking: unlessSet({ PRERANKING_SESSION_THREAD: 'main' }),
    ranking: unlessSet({ RANKING_SESSION_THREAD: 'main' }),
  },
};

function unlessSet(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).filter(([name]) => process.env[name] === undefined));
}

/** Variables that change how a mode runs its stages: one set in the environment is named in the results too. */
const REPORTED_SETTINGS: Record<PipelineMode, readonly string[]> = {
  split: ['INDEX_SEARCH_WORKERS', 'PRERANKING_SESSION_THREAD', 'RANKING_SESSION_THREAD'],
  'all-in-one': ['INDEX_SEARCH_WORKERS', 'PRERANKING_SESSION_THREAD', 'RANKING_SESSION_THREAD', 'STAGE_THREADS'],
};

/** A mode's settings as the results name them: the benchmark's own, then those set in the environment. */
function modeSettings(mode: PipelineMode): string {
  const settings = Object.values(MODE_ENV[mode]).flatMap((env) => Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`));
  for (const name of REPORTED_SETTINGS[mode])
    if (process.env[name] !== undefined) settings.push(`${name}=${process.env[name]} (environment)`);
  return settings.length === 0 ? 'the defaults' : settings.join(', ');
}
const SERVICES: readonly ServiceName[] = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'];
const WRK_SCRIPT = join(repoRoot, 'test', 'bench', 'wrk', 'recommend.lua');
const GRPC_LOAD = join(__dirname, 'grpc-load.js');

type Generator = 'rest' | 'grpc';

interface Level extends LoadResult {
  mode: PipelineMode;
  generator: Generator;
  concurrency: number;
  /** CPU ms per answered request, per process (all-in-one: one). */
  cpuMs: Record<string, number>;
  cpuMsTotal: number;
  grpcCalls: number;
  featureCalls: number;
  /** The load's monotonic window in µs ("start-end"), to cut CPU profiles to it. */
  window: string;
  /** CPU ms per answered request of the load generator (NaN where it could not be read) and of redis-server. */
  loadCpuMs: number;
  redisCpuMs: number;
  /**
   * The busiest event loop's share of the level's wall time (its main thread's CPU over the level; 1: never idle), with
   * the process it belongs to.
   */
  eventLoopBusy: number;
  busiestLoop: string;
}

/** The pipeline's processes by the name their CPU is reported under. */
function processesOf(pipeline: RunningPipeline): Record<string, number> {
  if (pipeline.mode === 'all-in-one') return { 'all-in-one': pipeline.pid('gateway')! };
  return Object.fromEntries(SERVICES.map((name) => [name, pipeline.pid(name)!]));
}

/** grpc_server_handled_total by service, summed over the pipeline's metrics endpoints. */
async function handledCalls(pipeline: RunningPipeline): Promise<Record<string, number>> {
  const urls = new Set(SERVICES.map((name) => pipeline.metricsUrl(name)!));
  const totals: Record<string, number> = {};
  for (const url of urls) {
    for (const [service, calls] of Object.entries(await handledCallsAt(url))) totals[service] = (totals[service] ?? 0) + calls;
  }
  return totals;
}

/** Runs a command to its end; its stdout's last line parsed as JSON. */
function runJson(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', (error) =>
      fail(
        new Error(`${command}: ${error.message}${command === 'wrk' ? ' (install it: apt-get install wrk, or bash scripts/setup.sh)' : ''}`),
      ),
    );
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{'))
        fail(new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${err.trim() || out.trim()}`));
      else done(JSON.parse(last) as Record<string, unknown>);
    });
  });
}

async function restLoad(url: string, concurrency: number, seconds: number, users: number): Promise<LoadResult> {
  const threads = Math.min(concurrency, 2);
  const r = (await runJson('wrk', [`-t${threads}`, `-c${concurrency}`, `-d${seconds}s`, '--timeout', '10s', '-s', WRK_SCRIPT, url], {
    ...process.env,
    BENCH_WRK_USERS: String(users),
    BENCH_WRK_K: String(K),
  })) as unknown as WrkCounts;
  return wrkLoadResult(r);
}

async function grpcLoad(address: string, concurrency: number, seconds: number, users: number): Promise<LoadResult> {
  const r = (await runJson(process.execPath, [
    GRPC_LOAD,
    '--address',
    address,
    '--concurrency',
    String(concurrency),
    '--duration-s',
    String(seconds),
    '--users',
    String(users),
    '--k',
    String(K),
  ])) as Record<string, number>;
  return {
    requests: r.requests!,
    qps: r.qps!,
    p50_ms: r.p50_ms!,
    p95_ms: r.p95_ms!,
    p99_ms: r.p99_ms!,
    degraded: round(r.requests! > 0 ? r.degraded! / r.requests! : 0, 4),
    failed: r.errors!,
    ...(r.cpu_ms !== undefined ? { generatorCpuMs: r.cpu_ms } : {}),
  };
}

/**
 * The answers per second the machine's cores could give at a level's CPU per answer (pipeline, load generator and Redis
 * together), every core busy; a load generator whose CPU could not be read counts as none.
 */
function cpuCeiling(level: Level): { qps: number; msPerAnswer: number } {
  const total = level.cpuMsTotal + (level.loadCpuMs || 0) + level.redisCpuMs;
  return { qps: round((availableParallelism() * 1000) / total, 1), msPerAnswer: round(total, 2) };
}

/**
 * One level: the load, and what every process spent and called meanwhile: the pipeline's processes (each whole, and its
 * main thread: the event loop), redis-server's and the load generator's own CPU.
 */
async function measureLevel(
  pipeline: RunningPipeline,
  generator: Generator,
  concurrency: number,
  users: number,
  redisPid: number,
): Promise<Level> {
  const pids = processesOf(pipeline);
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMsOf(pid)]));
  const loopBefore = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMsOf(pid, pid)]));
  const redisBefore = cpuMsOf(redisPid);
  const callsBefore = await handledCalls(pipeline);
  // The level's window on the monotonic clock (µs), which V8's CPU profiles (--cpu-prof) of every process share.
  const startedUs = process.hrtime.bigint() / 1000n;
  const load =
    generator === 'rest'
      ? await restLoad(pipeline.httpUrl, concurrency, DURATION_S, users)
      : await grpcLoad(pipeline.addresses.gateway, concurrency, DURATION_S, users);
  const endedUs = process.hrtime.bigint() / 1000n;
  const window = `${startedUs}-${endedUs}`;
  const wallMs = Number(endedUs - startedUs) / 1000;
  const loops = Object.entries(pids).map(([name, pid]) => ({ name, busy: (cpuMsOf(pid, pid) - loopBefore[name]!) / wallMs }));
  const busiest = loops.reduce((a, b) => (b.busy > a.busy ? b : a));
  const redisMs = cpuMsOf(redisPid) - redisBefore;
  const callsAfter = await handledCalls(pipeline);
  const perRequest = (value: number) => (load.requests > 0 ? value / load.requests : Number.NaN);
  const cpuMs = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, round(perRequest(cpuMsOf(pid) - cpuBefore[name]!), 2)]),
  );
  const delta = (service: string) => (callsAfter[service] ?? 0) - (callsBefore[service] ?? 0);
  // Calls between the pipeline's services: the gateway's own gRPC server counts the load generator's calls.
  const internal = Object.keys(callsAfter)
    .filter((service) => service !== 'gateway')
    .reduce((sum, service) => sum + delta(service), 0);
  return {
    mode: pipeline.mode,
    generator,
    concurrency,
    ...load,
    cpuMs,
    cpuMsTotal: round(
      Object.values(cpuMs).reduce((a, b) => a + b, 0),
      2,
    ),
    grpcCalls: round(perRequest(internal), 2),
    featureCalls: round(perRequest(delta('features')), 2),
    window,
    loadCpuMs: round(perRequest(load.generatorCpuMs ?? Number.NaN), 2),
    redisCpuMs: round(perRequest(redisMs), 2),
    eventLoopBusy: round(busiest.busy, 2),
    busiestLoop: busiest.name,
  };
}

interface RecommendJson {
  items: { item_id: string }[];
  degradations: unknown[];
  debug: { stage: string; candidates: { item_id: string }[] }[];
}

async function debugPlans(url: string, users: number, count: number): Promise<RequestPlan[]> {
  const plans: RequestPlan[] = [];
  for (let i = 0; i < count; i++) {
    const userId = `user-${1 + ((Math.imul(i + 1, 2654435761) >>> 0) % users)}`;
    const response = await fetch(`${url}/v1/recommendations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId, k: K, debug: true }),
    });
    const answer = (await response.json()) as RecommendJson;
    const stage = (name: string) => answer.debug.find((d) => d.stage === name)?.candidates.map((c) => c.item_id) ?? [];
    plans.push({ userId, retrieved: stage('STAGE_RETRIEVAL'), ranked: stage('STAGE_PRERANKING') });
  }
  return plans;
}

/** The highest requests/s among levels meeting the p99 with under 1% of answers carrying a fallback (0: none). */
function maxQps(levels: readonly Level[], p99Ms: number): number {
  return Math.max(0, ...levels.filter((l) => l.p99_ms <= p99Ms && l.degraded < 0.01 && l.failed === 0).map((l) => l.qps));
}

function modeSummary(levels: readonly Level[], floorP50: number, logCost: EventLogCost | undefined): Record<string, number> {
  const rest = levels.filter((l) => l.generator === 'rest');
  const grpc = levels.filter((l) => l.generator === 'grpc');
  const summary: Record<string, number> = {};
  for (const l of rest) {
    summary[`qps_c${l.concurrency}`] = l.qps;
    summary[`p50_ms_c${l.concurrency}`] = l.p50_ms;
    summary[`p95_ms_c${l.concurrency}`] = l.p95_ms;
    summary[`p99_ms_c${l.concurrency}`] = l.p99_ms;
    summary[`degraded_c${l.concurrency}`] = l.degraded;
  }
  for (const l of grpc) {
    summary[`grpc_qps_c${l.concurrency}`] = l.qps;
    summary[`grpc_p50_ms_c${l.concurrency}`] = l.p50_ms;
    summary[`grpc_p99_ms_c${l.concurrency}`] = l.p99_ms;
    summary[`grpc_degraded_c${l.concurrency}`] = l.degraded;
  }
  summary.max_qps_p99_under_100ms = maxQps(rest, 100);
  summary.max_qps_p99_under_50ms = maxQps(rest, 50);
  summary.grpc_max_qps_p99_under_100ms = maxQps(grpc, 100);
  summary.grpc_max_qps_p99_under_50ms = maxQps(grpc, 50);
  const c32 = rest.find((l) => l.concurrency === 32)!;
  summary.cpu_ms_per_request = c32.cpuMsTotal;
  // The machine's whole CPU budget at 32 clients: what the load generator and Redis spend beside the pipeline, the answers
  // per second every core busy at that CPU per answer would give (the ceiling of any level), and how busy the busiest
  // event loop was (one thread: at 1 it caps the process, whatever the other cores do).
  summary.load_generator_cpu_ms_per_request = c32.loadCpuMs;
  summary.redis_cpu_ms_per_request = c32.redisCpuMs;
  summary.cpu_ceiling_qps = cpuCeiling(c32).qps;
  summary.event_loop_busy_c32 = c32.eventLoopBusy;
  summary.p50_ms_c1_over_floor = round(rest.find((l) => l.concurrency === 1)!.p50_ms / floorP50, 2);
  if (logCost) {
    // The event log's cost per answer against the answer's own p50 at one client, measured in the same run.
    summary.log_write_ms_p99 = logCost.log_write_ms_p99;
    summary.log_write_p99_over_p50_c1 = round(logCost.log_write_ms_p99 / rest.find((l) => l.concurrency === 1)!.p50_ms, 5);
    summary.log_flush_ms_per_answer = logCost.log_flush_ms_per_answer;
    summary.events_logged = logCost.events_logged;
    summary.events_dropped = logCost.events_dropped;
  }
  return summary;
}

/** CPU ms per second of every pipeline process over `seconds` with no load. */
async function idleCpu(pipeline: RunningPipeline, seconds: number): Promise<Record<string, number>> {
  const processes = processesOf(pipeline);
  const before = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuMsOf(pid)]));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, round((cpuMsOf(pid) - before[name]!) / seconds, 1)]));
}

function markdown(
  levels: readonly Level[],
  facts: Record<string, string | number>,
  floor: Record<string, number>,
  idle: Record<string, Record<string, number>>,
): string {
  const lines = [
    '# bench:pipeline',
    '',
    `Run ${facts.date} with \`pnpm bench:pipeline\`: ${facts.items} items, ${facts.users} users, funnel retrieve ` +
      `${FUNNEL.RETRIEVE_MAX} / rank ${FUNNEL.RANK_MAX} / return ${K} (adaptive counts ${ADAPTIVE ? 'on' : 'off'}; admission ${ADMISSION.ADMISSION_ADAPTIVE === 'true' ? 'adaptive' : 'static 32 in flight'}); split mode with ` +
      `${modeSettings('split')}, all-in-one with ${modeSettings('all-in-one')}; ${DURATION_S} s per level; Node ${facts.node}; ` +
      `${facts.cores} cores (${facts.cpu}), ${facts.memory_gib} GiB; load average before the run ${facts.load_before}. ` +
      'The load generators (wrk for REST, grpc-load.js for gRPC) run on the same cores as the pipeline. The machine is ' +
      'shared: the figures are noisy, compare them only within one run.',
    '',
    `Floor of the same requests in one process (p50): ${floor.floor_p50_ms} ms (` +
      FLOOR_PARTS.map((p) => `${p} ${floor[`floor_${p}_p50_ms`]}`).join(', ') +
      ` ms). Candidates per request (p50): ${facts.retrieved_p50} retrieved, ${facts.ranked_p50} ranked.`,
    '',
    '"fallback" is the share of answers with at least one degradation (a stage skipped, late or down). CPU is ' +
      'utime+stime of the pipeline processes over the level divided by the answers (load generator and Redis apart: ' +
      'their own columns). "busiest event loop" is the main thread of the busiest process, its CPU over the level\'s ' +
      "wall time (1.0: never idle). The CPU ceiling is what the cores could answer at the 32-client level's CPU per " +
      'answer, pipeline, load generator and Redis together, every core busy. ' +
      'Calls are grpc_server_handled_total deltas of the stages and the feature service per answer (in-process calls ' +
      'in all-in-one mode).',
    '',
    `CPU at rest after the warm-up (ms per second, ${IDLE_S} s): ` +
      Object.entries(idle)
        .map(
          ([mode, per]) =>
            `${mode}: ${Object.entries(per)
              .map(([name, ms]) => `${name} ${ms}`)
              .join(', ')}`,
        )
        .join('; ') +
      '.',
    '',
    `CPU ceiling at 32 REST clients: ${MODES.map((mode) => {
      const c32 = levels.find((l) => l.mode === mode && l.generator === 'rest' && l.concurrency === 32);
      if (c32 === undefined) return `${mode}: not measured`;
      const { qps, msPerAnswer } = cpuCeiling(c32);
      return `${mode} ${qps} requests/s (${msPerAnswer} ms per answer)`;
    }).join(', ')}.`,
    '',
    '| mode | load | clients | requests/s | p50 ms | p95 ms | p99 ms | fallback | failed | CPU ms/request | per process | load gen / Redis ms/request | busiest event loop | calls/request (features) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const l of levels) {
    const per = Object.entries(l.cpuMs)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(', ');
    lines.push(
      `| ${l.mode} | ${l.generator === 'rest' ? 'REST (wrk)' : 'gRPC'} | ${l.concurrency} | ${l.qps} | ${l.p50_ms} | ${l.p95_ms} | ` +
        `${l.p99_ms} | ${(l.degraded * 100).toFixed(1)}% | ${l.failed} | ${l.cpuMsTotal} | ${per} | ${l.loadCpuMs} / ${l.redisCpuMs} | ` +
        `${l.eventLoopBusy} (${l.busiestLoop}) | ${l.grpcCalls} (${l.featureCalls}) |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  const redis = await RedisServer.start();
  const levels: Level[] = [];
  let floor: Record<string, number> | undefined;
  let facts: Record<string, string | number> = {};
  let pipeline: RunningPipeline | undefined;
  // Figures per process, flat in the JSON line: RSS at the end of a mode, CPU at rest after its warm-up.
  const perProcess: Record<string, number> = {};
  const idle: Record<string, Record<string, number>> = {};
  const logCosts: Partial<Record<PipelineMode, EventLogCost>> = {};
  let warnings = 0;
  try {
    for (const [index, mode] of MODES.entries()) {
      const started = performance.now();
      pipeline = await startPipeline({
        mode,
        workDir: WORK_DIR,
        ...(MODELS_DIR
          ? { modelsDir: MODELS_DIR }
          : {
              synthetic: { users: USERS, items: ITEMS, interactionsPerUser: INTERACTIONS },
              training: { retrieval: { epochs: EPOCHS }, ranking: { epochs: EPOCHS }, preranking: { epochs: EPOCHS } },
            }),
        redisUrl: redis.url,
        // The Redis the first mode loaded serves the second as it is.
        loadFeatures: index === 0,
        metrics: true,
        ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
        env: { ...MODE_ENV[mode], gateway: { AUTH_DISABLED: 'true', RATE_LIMIT_PER_SECOND: '0', ...FUNNEL, ...ADMISSION } },
        // Service warnings (answers with fallbacks under load) stay in the services' log files; the count is shown.
        log: (line) => (/^\[[\w-]+\] WARN /.test(line) ? warnings++ : console.log(line)),
      });
      console.log(`${mode}: up in ${round((performance.now() - started) / 1000, 1)} s`);
      const manifest = (await loadModelVersion(pipeline.modelsDir, 'dlrm')).manifest;
      const users = manifest.data.users;
      facts = { ...facts, items: manifest.data.items, users };
      // The floor's requests first (one at a time, debug answers: each request's candidate sets), then a warm-up.
      const plans = floor === undefined ? await debugPlans(pipeline.httpUrl, users, FLOOR_REQUESTS) : [];
      await restLoad(pipeline.httpUrl, 8, WARMUP_S, users);
      await grpcLoad(pipeline.addresses.gateway, 8, Math.min(WARMUP_S, 2), users);
      idle[mode] = await idleCpu(pipeline, IDLE_S);
      for (const [name, ms] of Object.entries(idle[mode]!)) perProcess[`${mode}_${name}_idle_cpu_ms_per_s`] = ms;
      console.log(
        `${mode}: CPU at rest ${Object.entries(idle[mode]!)
          .map(([name, ms]) => `${name} ${ms}`)
          .join(', ')} ms/s`,
      );
      for (const concurrency of LEVELS) {
        for (const generator of ['rest', 'grpc'] as const) {
          const level = await measureLevel(pipeline, generator, concurrency, users, redis.pid!);
          levels.push(level);
          console.log(
            `${mode} ${generator} c=${concurrency}: ${level.qps} requests/s, p50 ${level.p50_ms} ms, p99 ${level.p99_ms} ms, ` +
              `${(level.degraded * 100).toFixed(1)}% with a fallback, ${level.failed} failed, CPU ${level.cpuMsTotal} ms/request ` +
              `(${Object.entries(level.cpuMs)
                .map(([n, ms]) => `${n} ${ms}`)
                .join(', ')}; load generator ${level.loadCpuMs}, Redis ${level.redisCpuMs}), busiest event loop ` +
              `${level.eventLoopBusy} (${level.busiestLoop}), ${level.grpcCalls} calls/request (${level.featureCalls} to ` +
              `features); monotonic µs ${level.window}`,
          );
        }
      }
      for (const [name, pid] of Object.entries(processesOf(pipeline))) perProcess[`${mode}_${name}_rss_mib`] = rssMiB(pid);
      const logCost = await eventLogCost(pipeline.metricsUrl('gateway')!);
      logCosts[mode] = logCost;
      console.log(
        `${mode}: event log ${logCost.events_logged} answers logged, ${logCost.events_dropped} dropped, write cost on the request's path p99 ${logCost.log_write_ms_p99} ms, batch send off the path ${logCost.log_flush_ms_per_answer} ms per answer (mean)`,
      );
      if (floor === undefined) {
        const samples = await measureFloor(pipeline, plans, Math.min(20, plans.length));
        floor = { floor_p50_ms: round(quantile(samples.floor, 0.5)) };
        for (const part of FLOOR_PARTS) floor[`floor_${part}_p50_ms`] = round(quantile(samples.parts[part], 0.5));
        facts.retrieved_p50 = quantile(
          plans.map((p) => p.retrieved.length),
          0.5,
        );
        facts.ranked_p50 = quantile(
          plans.map((p) => p.ranked.length),
          0.5,
        );
        console.log(`floor: p50 ${floor.floor_p50_ms} ms (${FLOOR_PARTS.map((p) => `${p} ${floor![`floor_${p}_p50_ms`]}`).join(', ')} ms)`);
      }
      await pipeline.close();
      pipeline = undefined;
      if (warnings > 0) console.log(`${mode}: ${warnings} service warnings, in ${join(WORK_DIR, 'logs')}`);
      warnings = 0;
    }
  } finally {
    await pipeline?.close();
    await redis.destroy();
  }
  facts = {
    ...facts,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    node: process.versions.node,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memory_gib: round(totalmem() / 2 ** 30, 1),
    load_before: loadBefore,
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, markdown(levels, facts, floor!, idle));
  console.log(`results: ${RESULTS}`);

  const floorP50 = floor!.floor_p50_ms!;
  const splitC1 = levels.find((l) => l.mode === MODES[0] && l.generator === 'rest' && l.concurrency === 1)!;
  const result: Record<string, unknown> = {
    items: facts.items,
    users: facts.users,
    ...Object.fromEntries(
      MODES.map((mode) => [
        `mode_${mode.replace(/-/g, '_')}`,
        modeSummary(
          levels.filter((l) => l.mode === mode),
          floorP50,
          logCosts[mode],
        ),
      ]),
    ),
    ...floor,
    retrieved_p50: facts.retrieved_p50,
    ranked_p50: facts.ranked_p50,
    feature_calls_per_request: splitC1.featureCalls,
    // The event log's write cost per answer, the worst mode's (goal: under 0.2 ms).
    log_write_ms_p99: Math.max(...Object.values(logCosts).map((c) => c.log_write_ms_p99)),
    log_flush_ms_per_answer: Math.max(...Object.values(logCosts).map((c) => c.log_flush_ms_per_answer)),
    events_logged: Object.values(logCosts).reduce((sum, c) => sum + c.events_logged, 0),
    grpc_calls_per_request: splitC1.grpcCalls,
    duration_s_per_level: DURATION_S,
    cores: facts.cores,
    load_average_before: loadBefore,
    node_version: process.versions.node,
    settings_split: modeSettings('split'),
    settings_all_in_one: modeSettings('all-in-one'),
    ...perProcess,
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
