// Faults under steady load: every service as its own process (packages/pipeline, as bench:pipeline starts them) on a real
// redis-server persisted as the Helm chart configures it, a REST and a gRPC client at a fixed rate, and one fault at a
// time. Each fault's window (a few seconds before, the fault, a few seconds after) is cut out of the clients' records:
// requests sent, answered, degraded (and with which fallback), errors by status, requests lost (no answer), and the
// recovery time: from the fault's end to the end of the last answer that was not clean.
import { cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type ModelName, listVersions as listModelVersions } from '@recsys/model-format';
import { type PipelineMode, type RunningPipeline, type ServiceName, startPipeline } from '@recsys/pipeline';
import { RedisServer } from '@recsys/testing';
import { listVersions as listIndexVersions } from '@recsys/vector-index';
import { type RequestRecord, SteadyLoad } from './steady-load';

/** single: a fault of one component (answers may degrade; none may fail or be lost). swap: a publish (every answer clean). */
export type FaultKind = 'single' | 'swap';

export interface FaultContext {
  pipeline: RunningPipeline;
  redis: RedisServer;
  modelsDir: string;
  log: (line: string) => void;
}

export interface Fault {
  name: string;
  kind: FaultKind;
  mode: PipelineMode;
  /** Does the fault; resolves when it has ended (the process serves again, the version serves or was refused). */
  inject(context: FaultContext): Promise<{ note?: string }>;
}

export interface FaultResult {
  name: string;
  kind: FaultKind;
  mode: PipelineMode;
  /** Seconds the fault lasted (from its start to its end). */
  fault_s: number;
  sent: number;
  answered: number;
  degraded: number;
  /** Degraded answers by "stage: fallback". */
  fallbacks: Record<string, number>;
  /** Answered errors by "http <status>" / "grpc <CODE>". */
  errors: Record<string, number>;
  gateway_5xx: number;
  lost: number;
  /** Per phase: sent / not clean. */
  phases: Record<'before' | 'during' | 'after', { sent: number; unclean: number }>;
  /** From the fault's end to the end of the last answer that was not clean (0: clean from the end on). */
  recovery_s: number;
  /** The after window ended with answers still not clean. */
  recovered: boolean;
  note?: string;
  /** Services that ended on their own during the fault's window (the launcher's report). */
  crashes: string[];
  /** Target misses (empty: the fault met its targets). */
  misses: string[];
}

export interface FaultSuiteOptions {
  /** Models to serve; copied into workDir so that new versions can be published beside them. */
  modelsDir: string;
  workDir: string;
  faults: readonly Fault[];
  /** Requests per second per protocol. */
  rateQps: number;
  concurrency?: number;
  /** Steady load before each fault and after its end, seconds. */
  beforeS?: number;
  afterS?: number;
  /**
   * The gateway's request budget, ms (BUDGET_DEFAULT_MS). The suite judges how faults are handled, not latency: a budget
   * well above the machine's noise keeps answers clean when nothing is broken (the benchmarks measure latency).
   */
  budgetMs?: number;
  /** Seconds a fault that lasts (SIGSTOP, features down, Redis gone) holds. */
  holdS?: { stop?: number; featuresDown?: number; redisGone?: number };
  log?: (line: string) => void;
}

/** Recovery target: clean answers within this long of a fault's end. */
export const RECOVERY_TARGET_S = 2;
/** gRPC codes a server sends for its own failure (the gateway's 5xx). */
const GRPC_SERVER_ERRORS = new Set(['INTERNAL', 'UNKNOWN', 'DATA_LOSS', 'UNIMPLEMENTED']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until a service's output has a line matching `pattern` written after `fromLength`; resolves with the line. */
/** The gateway's settings for a request budget of `budgetMs` (default 2000; the feature reads get half). */
export function budgetEnv(budgetMs = 2000): Record<string, string> {
  return {
    BUDGET_DEFAULT_MS: String(budgetMs),
    BUDGET_MAX_MS: String(Math.max(1000, budgetMs)),
    FEATURES_TIMEOUT_MS: String(Math.max(200, Math.round(budgetMs / 2))),
  };
}

async function waitForOutput(
  pipeline: RunningPipeline,
  name: ServiceName,
  fromLength: number,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const line = pipeline
      .output(name)
      .slice(fromLength)
      .split('\n')
      .find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > until) throw new Error(`${name}: no log line matching ${pattern} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A copy of the newest model version as version + 1 (staged, then renamed in, as the trainer publishes); corrupt: its graph bytes damaged. */
export async function publishModelCopy(modelsDir: string, name: ModelName, corrupt = false): Promise<string> {
  const versions = await listModelVersions(modelsDir, name);
  const from = versions.at(-1)!;
  const version = String(Number(from) + 1);
  const staging = join(modelsDir, name, `.staging-${version}-resilience`);
  await rm(staging, { recursive: true, force: true });
  await cp(join(modelsDir, name, from), staging, { recursive: true });
  const manifestFile = join(staging, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as {
    version: string;
    graphs: Record<string, { file: string; sha256: string }>;
  };
  manifest.version = version;
  if (corrupt) {
    // Damaged bytes under a checksum that matches them: the checksum passes, the ONNX runtime must refuse the graph.
    const { createHash } = await import('node:crypto');
    for (const graph of Object.values(manifest.graphs)) {
      const bytes = await readFile(join(staging, graph.file));
      for (let i = Math.floor(bytes.length / 3); i < bytes.length; i += 7) bytes[i] = (bytes[i]! * 31 + 17) & 0xff;
      await writeFile(join(staging, graph.file), bytes);
      graph.sha256 = createHash('sha256').update(bytes).digest('hex');
    }
  }
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(staging, join(modelsDir, name, version));
  return version;
}

/** A copy of the newest index version as a new version (staged under a dot name, then renamed in); corrupt: its vectors damaged. */
export async function publishIndexCopy(indexDir: string, corrupt = false): Promise<string> {
  const versions = await listIndexVersions(indexDir);
  const from = versions.at(-1)!;
  const version = `${from}-r${Date.now().toString(36)}`;
  const staging = join(indexDir, `.${version}`);
  await cp(join(indexDir, from), staging, { recursive: true });
  const metaFile = join(staging, 'meta.json');
  const meta = JSON.parse(await readFile(metaFile, 'utf8')) as { version: string };
  meta.version = version;
  await writeFile(metaFile, `${JSON.stringify(meta)}\n`);
  if (corrupt) {
    const file = join(staging, 'vectors.f32');
    const bytes = await readFile(file);
    for (let i = 0; i < bytes.length; i += 5) bytes[i] ^= 0x5a;
    await writeFile(file, bytes);
  }
  await rename(staging, join(indexDir, version));
  return version;
}

/**
 * What Redis holds, by kind of key: how many, and a digest of their values (features, history, popularity, events); for
 * the other keys (the event log's stream, answers kept for attribution, rate-limit buckets), which the steady load keeps
 * adding to while the snapshots are taken, their names, so that a restart is judged by what it lost.
 */
export async function redisSnapshot(url: string): Promise<Record<string, { keys: number; digest: string; names?: string[] }>> {
  const { createHash } = await import('node:crypto');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    keys.sort();
    const groups: Record<string, { keys: number; hash: ReturnType<typeof createHash> }> = {};
    const kindOf = (key: string) =>
      /(^|:)h:/.test(key)
        ? 'history'
        : /(^|:)pe?:|(^|:)pop/.test(key)
          ? 'popularity'
          : /(^|:)e:/.test(key)
            ? 'events'
            : /(^|:)[ui]:/.test(key)
              ? 'features'
              : 'other';
    const otherNames: string[] = [];
    for (const key of keys) {
      const kind = kindOf(key);
      const group = (groups[kind] ??= { keys: 0, hash: createHash('sha256') });
      group.keys++;
      if (kind === 'other') {
        otherNames.push(key);
        continue;
      }
      if (group.keys > 2000) continue;
      const type = await client.type(key);
      const value =
        type === 'string'
          ? await client.getBuffer(key)
          : type === 'hash'
            ? JSON.stringify(Object.entries(await client.hgetall(key)).sort())
            : type === 'zset'
              ? JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES'))
              : type === 'list'
                ? JSON.stringify(await client.lrange(key, 0, -1))
                : type === 'set'
                  ? JSON.stringify((await client.smembers(key)).sort())
                  : type;
      group.hash.update(key).update(value ?? '');
    }
    return Object.fromEntries(
      Object.entries(groups).map(([k, g]) => [
        k,
        k === 'other' ? { keys: g.keys, digest: '-', names: otherNames } : { keys: g.keys, digest: g.hash.digest('hex').slice(0, 16) },
      ]),
    );
  } finally {
    client.disconnect();
  }
}

/** The faults: every stage killed (-9) and restarted, a stage stopped, Redis restarted, the feature service down, swaps, corrupt publishes, all-in-one without Redis. */
export function allFaults(hold: FaultSuiteOptions['holdS'] = {}): Fault[] {
  const stopS = hold.stop ?? 3;
  const featuresDownS = hold.featuresDown ?? 10;
  const redisGoneS = hold.redisGone ?? 3;
  const kill = (name: ServiceName): Fault => ({
    name: `kill -9 ${name}`,
    kind: 'single',
    mode: 'split',
    inject: async ({ pipeline }) => {
      await pipeline.signal(name, 'SIGKILL');
      await pipeline.start(name);
      return {};
    },
  });
  const swap = (model: ModelName, service: ServiceName, corrupt: boolean): Fault => ({
    name: `${corrupt ? 'corrupt' : 'publish'} ${model}`,
    kind: 'swap',
    mode: 'split',
    inject: async ({ pipeline, modelsDir }) => {
      const from = pipeline.output(service).length;
      const version = await publishModelCopy(modelsDir, model, corrupt);
      const line = await waitForOutput(pipeline, service, from, new RegExp(`${model} v${version} (replaces|refused)`));
      if (corrupt !== /refused/.test(line)) throw new Error(`${service}: ${model} v${version}: ${line}`);
      return { note: `${model} v${version} ${corrupt ? 'refused' : 'serves'}` };
    },
  });
  const index = (corrupt: boolean): Fault => ({
    name: `${corrupt ? 'corrupt' : 'publish'} index`,
    kind: 'swap',
    mode: 'split',
    inject: async ({ pipeline }) => {
      const from = pipeline.output('retrieval').length;
      const version = await publishIndexCopy(pipeline.indexDir, corrupt);
      const line = await waitForOutput(pipeline, 'retrieval', from, new RegExp(`index version ${version} (serving|refused)`));
      if (corrupt !== /refused/.test(line)) throw new Error(`retrieval: index ${version}: ${line}`);
      return { note: `index ${version} ${corrupt ? 'refused' : 'serves'}` };
    },
  });
  return [
    kill('retrieval'),
    kill('preranking'),
    kill('ranking'),
    kill('reranking'),
    {
      name: `SIGSTOP ranking ${stopS} s`,
      kind: 'single',
      mode: 'split',
      inject: async ({ pipeline }) => {
        await pipeline.signal('ranking', 'SIGSTOP');
        await sleep(stopS * 1000);
        await pipeline.signal('ranking', 'SIGCONT');
        return {};
      },
    },
    {
      name: 'restart Redis',
      kind: 'single',
      mode: 'split',
      inject: async ({ redis }) => {
        const before = await redisSnapshot(redis.url);
        await redis.stop();
        await redis.resume();
        const after = await redisSnapshot(redis.url);
        // Features, history, popularity and feedback events: every key and value as before. The other keys grow with
        // the load (answers logged and kept for attribution while the snapshots are taken): none of them may be lost.
        const changed = Object.keys({ ...before, ...after }).filter(
          (k) => k !== 'other' && (before[k]?.keys !== after[k]?.keys || before[k]?.digest !== after[k]?.digest),
        );
        const kept = new Set(after.other?.names ?? []);
        const lost = (before.other?.names ?? []).filter((name) => !kept.has(name));
        if (changed.length > 0 || lost.length > 0) {
          const counts = (snapshot: typeof before) =>
            Object.fromEntries(Object.entries(snapshot).map(([k, v]) => [k, { keys: v.keys, digest: v.digest }]));
          throw new Error(
            `Redis restart lost data: ${JSON.stringify({ changed, lost: lost.slice(0, 10), lost_count: lost.length, before: counts(before), after: counts(after) })}`,
          );
        }
        return {
          note: `kept ${Object.entries(after)
            .map(([k, v]) => `${v.keys} ${k}`)
            .join(', ')} keys`,
        };
      },
    },
    {
      name: `features down ${featuresDownS} s`,
      kind: 'single',
      mode: 'split',
      inject: async ({ pipeline }) => {
        await pipeline.stop('features');
        await sleep(featuresDownS * 1000);
        await pipeline.start('features');
        return {};
      },
    },
    swap('dlrm', 'ranking', false),
    swap('preranker', 'preranking', false),
    index(false),
    swap('dlrm', 'ranking', true),
    index(true),
    {
      name: `all-in-one, Redis gone ${redisGoneS} s`,
      kind: 'single',
      mode: 'all-in-one',
      inject: async ({ redis }) => {
        await redis.stop();
        await sleep(redisGoneS * 1000);
        await redis.resume();
        return {};
      },
    },
  ];
}

/** The figures of one fault from the records of its window. */
export function summarize(
  fault: Fault,
  records: readonly RequestRecord[],
  times: { from: number; start: number; end: number; to: number },
  note?: string,
): FaultResult {
  const window = records.filter((r) => r.end >= times.from && r.end < times.to);
  const clean = (r: RequestRecord) => r.outcome === 'ok';
  const answered = window.filter((r) => r.outcome !== 'lost');
  const degraded = window.filter((r) => r.outcome === 'degraded');
  const fallbacks: Record<string, number> = {};
  for (const r of degraded) for (const f of r.fallbacks) fallbacks[f] = (fallbacks[f] ?? 0) + 1;
  const errors: Record<string, number> = {};
  for (const r of window) if (r.outcome !== 'ok' && r.outcome !== 'degraded') errors[r.outcome] = (errors[r.outcome] ?? 0) + 1;
  const gateway5xx = window.filter(
    (r) => /^http 5\d\d$/.test(r.outcome) || (r.outcome.startsWith('grpc ') && GRPC_SERVER_ERRORS.has(r.outcome.slice(5))),
  ).length;
  const lost = window.length - answered.length;
  const phase = (from: number, to: number) => {
    const inPhase = window.filter((r) => r.end >= from && r.end < to);
    return { sent: inPhase.length, unclean: inPhase.filter((r) => !clean(r)).length };
  };
  const phases = { before: phase(times.from, times.start), during: phase(times.start, times.end), after: phase(times.end, times.to) };
  const lastUnclean = Math.max(times.end, ...window.filter((r) => !clean(r) && r.end >= times.end).map((r) => r.end));
  const recoveryS = (lastUnclean - times.end) / 1000;
  // Recovered: clean answers after the last unclean one, before the window closed.
  const recovered = window.some((r) => clean(r) && r.start >= lastUnclean) || lastUnclean === times.end;
  const misses: string[] = [];
  if (gateway5xx > 0) misses.push(`${gateway5xx} gateway 5xx`);
  if (lost > 0) misses.push(`${lost} lost`);
  const failed = window.length - degraded.length - window.filter(clean).length - gateway5xx - lost;
  if (failed > 0) misses.push(`${failed} failed (${Object.keys(errors).join(', ')})`);
  // A swap is judged from its publish on (during and after): an answer that fell back before it is the machine's noise.
  const swapUnclean = phases.during.unclean + phases.after.unclean;
  if (fault.kind === 'swap' && swapUnclean > 0) misses.push(`${swapUnclean} degraded or failed during a swap`);
  if (!recovered) misses.push('not recovered at the end of the window');
  else if (recoveryS > RECOVERY_TARGET_S) misses.push(`recovery ${recoveryS.toFixed(2)} s > ${RECOVERY_TARGET_S} s`);
  if (window.length === 0) misses.push('no requests in the window');
  return {
    name: fault.name,
    kind: fault.kind,
    mode: fault.mode,
    fault_s: Math.round(times.end - times.start) / 1000,
    sent: window.length,
    answered: answered.length,
    degraded: degraded.length,
    fallbacks,
    errors,
    gateway_5xx: gateway5xx,
    lost,
    phases,
    recovery_s: Math.round(recoveryS * 1000) / 1000,
    recovered,
    ...(note ? { note } : {}),
    crashes: [],
    misses,
  };
}

/**
 * Runs the faults in order, one at a time under steady load, split-mode faults on one pipeline and all-in-one faults on
 * another. Each fault's inject() failing (a swap never seen, data lost by Redis) is a miss of that fault.
 */
export async function runFaultSuite(options: FaultSuiteOptions): Promise<FaultResult[]> {
  const log = options.log ?? (() => undefined);
  const beforeS = options.beforeS ?? 3;
  const afterS = options.afterS ?? 4;
  if (options.faults.length === 0) return [];
  await rm(options.workDir, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const modelsDir = join(options.workDir, 'models');
  await cp(options.modelsDir, modelsDir, { recursive: true, filter: (src) => !/\/\.staging-/.test(src) });
  const users = await userCount(modelsDir);
  const redis = await RedisServer.start();
  const results: FaultResult[] = [];
  const crashes: string[] = [];
  try {
    for (const mode of ['split', 'all-in-one'] as const) {
      const faults = options.faults.filter((f) => f.mode === mode);
      if (faults.length === 0) continue;
      const pipeline = await startPipeline({
        mode,
        workDir: join(options.workDir, 'pipeline'),
        modelsDir,
        redisUrl: redis.url,
        loadFeatures: mode === 'split' || !options.faults.some((f) => f.mode === 'split'),
        metrics: true,
        ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
        env: {
          gateway: { AUTH_DISABLED: 'true', RATE_LIMIT_PER_SECOND: '0', ...budgetEnv(options.budgetMs) },
          // A new index version is looked for every second (5 s by default) to keep the windows short.
          retrieval: { INDEX_POLL_MS: '1000' },
        },
        log: (line) => {
          // The launcher reports a service that ended without being asked to (a kill the suite sent is not reported).
          if (/ ended unexpectedly/.test(line)) crashes.push(line.split('\n')[0]!);
          if (!/^\[[\w-]+\] (WARN|ERROR) /.test(line)) log(line);
        },
      });
      const load = SteadyLoad.start(
        { rest: pipeline.httpUrl, grpc: pipeline.addresses.gateway },
        { rateQps: options.rateQps, concurrency: options.concurrency ?? 4, users },
      );
      try {
        // Warm-up: both clients started (a node process takes a while on a busy machine) and served, connections open.
        await load.answering(30_000);
        await sleep(1000);
        for (const fault of faults) {
          const from = Date.now();
          await sleep(beforeS * 1000);
          const start = Date.now();
          let note: string | undefined;
          let failure: string | undefined;
          try {
            note = (await fault.inject({ pipeline, redis, modelsDir, log })).note;
          } catch (error) {
            failure = error instanceof Error ? error.message : String(error);
          }
          const end = Date.now();
          await sleep(afterS * 1000);
          const to = Date.now();
          const result = summarize(fault, load.records, { from, start, end, to }, note);
          if (failure !== undefined) result.misses.push(failure);
          result.crashes = crashes.splice(0);
          for (const crash of result.crashes) result.misses.push(`crash: ${crash}`);
          results.push(result);
          log(
            `${fault.name}: ${result.sent} sent, ${result.answered} answered, ${result.degraded} degraded, ${result.gateway_5xx} 5xx, ` +
              `${result.lost} lost, recovery ${result.recovery_s} s${result.misses.length ? ` — MISSED: ${result.misses.join('; ')}` : ''}`,
          );
        }
      } finally {
        await load.stop().catch((error: unknown) => log(String(error)));
        await pipeline.close();
      }
    }
  } finally {
    await redis.destroy();
  }
  return results;
}

/** Users in the data the newest ranking model was trained on (the load draws user-1..user-N). */
export async function userCount(modelsDir: string): Promise<number> {
  const versions = (await readdir(join(modelsDir, 'dlrm'))).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  const manifest = JSON.parse(await readFile(join(modelsDir, 'dlrm', versions.at(-1)!, 'manifest.json'), 'utf8')) as {
    data: { users: number };
  };
  return manifest.data.users;
}

/** A markdown table of the faults' figures. */
export function faultTable(results: readonly FaultResult[]): string {
  const count = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ×${v}`)
      .join('; ') || '–';
  const lines = [
    '| fault | mode | fault s | sent | answered | degraded (fallback) | errors | 5xx | lost | before / during / after (unclean of sent) | recovery s | result |',
    '| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | --- |',
  ];
  for (const r of results) {
    const p = r.phases;
    lines.push(
      `| ${r.name} | ${r.mode} | ${r.fault_s} | ${r.sent} | ${r.answered} | ${r.degraded} (${count(r.fallbacks)}) | ${count(r.errors)} | ` +
        `${r.gateway_5xx} | ${r.lost} | ${p.before.unclean}/${p.before.sent} · ${p.during.unclean}/${p.during.sent} · ${p.after.unclean}/${p.after.sent} | ` +
        `${r.recovered ? r.recovery_s : 'not recovered'} | ${r.misses.length === 0 ? `ok${r.note ? ` (${r.note})` : ''}` : `MISSED: ${r.misses.join('; ')}`} |`,
    );
  }
  return lines.join('\n');
}
