// Soak: a steady load for minutes while every pipeline process is sampled: resident memory and open file descriptors
// from /proc/<pid>, event-loop lag (p99 and mean over each sampling interval) and active handles from the process's
// Prometheus endpoint (prom-client's default metrics in service-kit). After a warm-up, RSS and lag growth compare the
// mean of the last samples with the mean of the first ones; descriptors and handles are counted at rest (the load
// stopped, its connections gone) after the warm-up and after the soak, since under load they move with the requests
// in flight.
import { readdirSync, readFileSync } from 'node:fs';
import type { RunningPipeline, ServiceName } from '@recsys/pipeline';
import { SteadyLoad } from './steady-load';

export interface ProcessSample {
  t: number;
  rssMiB: number;
  fds: number;
  threads: number;
  lagP99Ms: number;
  lagMeanMs: number;
  handles: number;
  /** V8 heap in use: a leak of JS objects shows here, native growth (allocator, onnxruntime) only in RSS. */
  heapMiB: number;
  /** V8 heap committed, and its new space: RSS follows them when V8 resizes the young generation, with no change in use. */
  heapTotalMiB: number;
  newSpaceMiB: number;
}

export interface ProcessTrend {
  name: string;
  pid: number;
  samples: number;
  rss_mib_start: number;
  rss_mib_end: number;
  rss_growth_pct: number;
  heap_mib_start: number;
  heap_mib_end: number;
  heap_total_mib_start: number;
  heap_total_mib_end: number;
  new_space_mib_start: number;
  new_space_mib_end: number;
  fds_start: number;
  fds_end: number;
  handles_start: number;
  handles_end: number;
  lag_p99_ms_start: number;
  lag_p99_ms_end: number;
  lag_growth_pct: number;
  misses: string[];
}

export interface SoakResult {
  minutes: number;
  rate_qps: number;
  requests: number;
  failed: number;
  shed: number;
  degraded: number;
  processes: ProcessTrend[];
  /** The largest RSS growth of any process after warm-up. */
  rss_growth_pct: number;
  misses: string[];
}

/** A process's descriptors and active handles at rest: the least of a few samples, so a timer's moment does not count. */
export interface RestCounts {
  fds: number;
  handles: number;
}

export interface SoakOptions {
  pipeline: RunningPipeline;
  /** Total requests per second (half over REST, half over gRPC). */
  rateQps: number;
  minutes: number;
  users: number;
  apiKey?: string;
  /** Seconds between samples (default: a twentieth of the soak, 5 to 30 s). */
  sampleS?: number;
  log?: (line: string) => void;
}

/** RSS growth past this share after warm-up is a leak (the issue's target). */
export const SOAK_GROWTH_LIMIT_PCT = 10;
/** Event-loop lag may also move this much in absolute terms on a shared machine before it counts as growth. */
const LAG_SLACK_MS = 5;
/** At rest: the wait for the requests in flight to end once the load stopped, then samples this far apart. */
const REST_SETTLE_MS = 3000;
const REST_SAMPLES = 3;
const REST_SAMPLE_GAP_MS = 1000;
const SERVICES: readonly ServiceName[] = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

function statusField(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : Number.NaN;
}

/** A metric's value; `labels` (e.g. 'space="new"') picks a series whose labels start with them. */
function metric(text: string, name: string, labels?: string): number {
  const prefixes = labels === undefined ? [`${name} `, `${name}{`] : [`${name}{${labels}`];
  const line = text.split('\n').find((l) => prefixes.some((prefix) => l.startsWith(prefix)));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

export async function sampleProcess(pid: number, metricsUrl: string | undefined): Promise<ProcessSample> {
  let lagP99Ms = Number.NaN;
  let lagMeanMs = Number.NaN;
  let handles = Number.NaN;
  let heapMiB = Number.NaN;
  let heapTotalMiB = Number.NaN;
  let newSpaceMiB = Number.NaN;
  if (metricsUrl !== undefined) {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
    lagP99Ms = metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000;
    lagMeanMs = metric(text, 'nodejs_eventloop_lag_mean_seconds') * 1000;
    handles = metric(text, 'nodejs_active_handles_total');
    heapMiB = metric(text, 'nodejs_heap_size_used_bytes') / 2 ** 20;
    heapTotalMiB = metric(text, 'nodejs_heap_size_total_bytes') / 2 ** 20;
    newSpaceMiB = metric(text, 'nodejs_heap_space_size_total_bytes', 'space="new"') / 2 ** 20;
  }
  return {
    t: Date.now(),
    rssMiB: statusField(pid, 'VmRSS') / 1024,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads: statusField(pid, 'Threads'),
    lagP99Ms,
    lagMeanMs,
    handles,
    heapMiB,
    heapTotalMiB,
    newSpaceMiB,
  };
}

/**
 * Growth from the first samples after warm-up (the first quarter is warm-up) to the last ones; descriptors and handles
 * from the counts at rest after the warm-up (`rest.start`) and after the soak (`rest.end`). Counted under load they
 * move with the sockets and timers of the requests in flight: a gateway's handles read 18.3 → 22 between three-sample
 * windows with nothing leaked, and no rule on such windows tells that from a leak for sure. At rest a leaked handle is
 * still there and nothing else is.
 */
export function trendOf(
  name: string,
  pid: number,
  samples: readonly ProcessSample[],
  rest: { start: RestCounts; end: RestCounts },
): ProcessTrend {
  const warm = samples.slice(Math.floor(samples.length / 4));
  const span = Math.max(1, Math.floor(warm.length / 4));
  const first = warm.slice(0, span);
  const last = warm.slice(-span);
  const at = (part: readonly ProcessSample[], key: keyof ProcessSample) => mean(part.map((s) => s[key]));
  const pct = (a: number, b: number) => (a > 0 ? ((b - a) / a) * 100 : 0);
  const rssGrowth = pct(at(first, 'rssMiB'), at(last, 'rssMiB'));
  const lagStart = at(first, 'lagP99Ms');
  const lagEnd = at(last, 'lagP99Ms');
  const misses: string[] = [];
  if (rssGrowth >= SOAK_GROWTH_LIMIT_PCT) misses.push(`RSS grew ${round(rssGrowth, 1)}%`);
  if (rest.end.fds > rest.start.fds) misses.push(`file descriptors at rest grew ${rest.start.fds} → ${rest.end.fds}`);
  if (rest.end.handles > rest.start.handles) misses.push(`active handles at rest grew ${rest.start.handles} → ${rest.end.handles}`);
  if (lagEnd > lagStart * (1 + SOAK_GROWTH_LIMIT_PCT / 100) && lagEnd - lagStart > LAG_SLACK_MS)
    misses.push(`event-loop lag p99 grew ${round(lagStart)} → ${round(lagEnd)} ms`);
  return {
    name,
    pid,
    samples: samples.length,
    rss_mib_start: round(at(first, 'rssMiB'), 1),
    rss_mib_end: round(at(last, 'rssMiB'), 1),
    rss_growth_pct: round(rssGrowth),
    heap_mib_start: round(at(first, 'heapMiB'), 1),
    heap_mib_end: round(at(last, 'heapMiB'), 1),
    heap_total_mib_start: round(at(first, 'heapTotalMiB'), 1),
    heap_total_mib_end: round(at(last, 'heapTotalMiB'), 1),
    new_space_mib_start: round(at(first, 'newSpaceMiB'), 1),
    new_space_mib_end: round(at(last, 'newSpaceMiB'), 1),
    fds_start: rest.start.fds,
    fds_end: rest.end.fds,
    handles_start: rest.start.handles,
    handles_end: rest.end.handles,
    lag_p99_ms_start: round(lagStart),
    lag_p99_ms_end: round(lagEnd),
    lag_growth_pct: round(pct(lagStart, lagEnd)),
    misses,
  };
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { pipeline } = options;
  const log = options.log ?? (() => undefined);
  const totalMs = options.minutes * 60_000;
  const sampleMs = (options.sampleS ?? Math.min(30, Math.max(5, (options.minutes * 60) / 20))) * 1000;
  const names: string[] = pipeline.mode === 'all-in-one' ? ['all-in-one'] : [...SERVICES];
  const pidOf = (name: string) => pipeline.pid(name === 'all-in-one' ? 'gateway' : (name as ServiceName))!;
  const urlOf = (name: string) => pipeline.metricsUrl(name === 'all-in-one' ? 'gateway' : (name as ServiceName));
  const samples = new Map<string, ProcessSample[]>(names.map((n) => [n, []]));
  const startLoad = () =>
    SteadyLoad.start(
      { rest: pipeline.httpUrl, grpc: pipeline.addresses.gateway },
      { rateQps: options.rateQps / 2, concurrency: 8, users: options.users, apiKey: options.apiKey },
    );
  // Descriptors and handles of every process with no load: the clients stopped (their connections closed with them),
  // the requests in flight given time to end, then the least of REST_SAMPLES samples.
  const atRest = async (): Promise<Map<string, RestCounts>> => {
    await sleep(REST_SETTLE_MS);
    const counts = new Map<string, RestCounts>(names.map((n) => [n, { fds: Infinity, handles: Infinity }]));
    for (let k = 0; k < REST_SAMPLES; k++) {
      if (k > 0) await sleep(REST_SAMPLE_GAP_MS);
      for (const name of names) {
        const sample = await sampleProcess(pidOf(name), urlOf(name));
        const c = counts.get(name)!;
        counts.set(name, { fds: Math.min(c.fds, sample.fds), handles: Math.min(c.handles, sample.handles) });
      }
    }
    return counts;
  };
  // The process the progress lines show: the gateway (or the all-in-one process).
  const shown = names.at(-1)!;
  const logRest = (when: string, counts: Map<string, RestCounts>) =>
    log(`soak: at rest ${when}, ${shown} ${counts.get(shown)!.fds} fds, ${counts.get(shown)!.handles} handles`);
  const records: SteadyLoad['records'][] = [];
  let load = startLoad();
  let restStart: Map<string, RestCounts> | undefined;
  const started = Date.now();
  try {
    // Scrape once so that each later sample's lag covers one interval.
    for (const name of names) await sampleProcess(pidOf(name), urlOf(name));
    while (Date.now() - started < totalMs) {
      await sleep(Math.min(sampleMs, totalMs - (Date.now() - started)));
      for (const name of names) samples.get(name)!.push(await sampleProcess(pidOf(name), urlOf(name)));
      const gw = samples.get(shown)!.at(-1)!;
      log(
        `soak ${Math.round((Date.now() - started) / 1000)} s: ${records.reduce((n, r) => n + r.length, 0) + load.records.length} requests; ` +
          `${shown} RSS ${round(gw.rssMiB, 1)} MiB, ${gw.fds} fds, lag p99 ${round(gw.lagP99Ms)} ms`,
      );
      if (restStart === undefined && Date.now() - started >= totalMs / 4) {
        // The warm-up is over: the counts at rest that the end is compared with, then the load again.
        await load.stop();
        records.push(load.records);
        restStart = await atRest();
        logRest('after the warm-up', restStart);
        load = startLoad();
      }
    }
  } finally {
    await load.stop();
    records.push(load.records);
  }
  const restEnd = await atRest();
  logRest('after the soak', restEnd);
  // Never so (the loop samples until the end, past the warm-up): without the counts at rest there is nothing to judge.
  if (restStart === undefined) throw new Error('the soak ended before its warm-up: no counts at rest to compare');
  const restAfterWarmUp = restStart;
  const all = records.flat();
  const processes = names.map((name) =>
    trendOf(name, pidOf(name), samples.get(name)!, { start: restAfterWarmUp.get(name)!, end: restEnd.get(name)! }),
  );
  // Shed answers (429 / RESOURCE_EXHAUSTED: admission control) are counted apart; anything else not answered is a failure.
  const shed = all.filter((r) => r.outcome === 'http 429' || r.outcome === 'grpc RESOURCE_EXHAUSTED').length;
  const failed = all.filter((r) => r.outcome !== 'ok' && r.outcome !== 'degraded').length - shed;
  const degraded = all.filter((r) => r.outcome === 'degraded').length;
  const misses = processes.flatMap((p) => p.misses.map((m) => `${p.name}: ${m}`));
  if (failed > 0) misses.push(`${failed} requests failed`);
  return {
    minutes: round((Date.now() - started) / 60_000),
    rate_qps: options.rateQps,
    requests: all.length,
    failed,
    shed,
    degraded,
    processes,
    rss_growth_pct: Math.max(...processes.map((p) => p.rss_growth_pct)),
    misses,
  };
}

export function soakTable(result: SoakResult): string {
  const lines = [
    '| process | samples | RSS MiB start → end | RSS growth | V8 heap used MiB start → end | V8 heap total (new space) MiB start → end | fds at rest start → end | handles at rest start → end | lag p99 ms start → end | result |',
    '| --- | ---: | --- | ---: | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of result.processes)
    lines.push(
      `| ${p.name} | ${p.samples} | ${p.rss_mib_start} → ${p.rss_mib_end} | ${p.rss_growth_pct}% | ${p.heap_mib_start} → ${p.heap_mib_end} | ` +
        `${p.heap_total_mib_start} (${p.new_space_mib_start}) → ${p.heap_total_mib_end} (${p.new_space_mib_end}) | ${p.fds_start} → ${p.fds_end} | ` +
        `${p.handles_start} → ${p.handles_end} | ${p.lag_p99_ms_start} → ${p.lag_p99_ms_end} | ${p.misses.length ? `MISSED: ${p.misses.join('; ')}` : 'flat'} |`,
    );
  return lines.join('\n');
}
