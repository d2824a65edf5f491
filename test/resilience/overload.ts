// The overload curve: the gateway's capacity (answered requests/s with a closed loop of requests in flight), then an
// open-loop load (open-loop.ts, its own process) at fixed multiples of it: offered vs answered and shed (429) per
// second, the p99 of the answered requests (from when each was due) and the share answered with a fallback. With
// admission control the answered p99 stays near the budget past saturation while the excess is shed fast; without
// it every request queues and the p99 grows with the backlog.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface OverloadOptions {
  gatewayRest: string;
  /** Measured when absent (a closed loop for durationS). */
  capacityQps?: number;
  /** Seconds per load level (default 10). */
  durationS?: number;
  /** Multiples of the capacity to offer (default 0.5, 1, 1.5, 2, 3). */
  multiples?: number[];
  /** The API key the gateway accepts (else RECSYS_API_KEY). */
  apiKey?: string;
  /** Users the requests spread over (user-1..user-N). */
  users?: number;
}

export interface CurvePoint {
  offered_qps: number;
  answered_qps: number;
  shed_qps: number;
  p99_ms: number;
  degraded_pct: number;
  /** p99 of the 429 answers: how fast a shed request learns it was shed. */
  shed_latency_p99_ms?: number;
  /** Answers that were neither 200 nor 429 (timeouts, errors, 5xx), by status. */
  other?: Record<string, number>;
  /** p99 of how late the generator itself sent requests (its own share of every latency on a busy machine). */
  send_lag_p99_ms?: number;
  /** p99 of the clean answers and of those with a fallback apart (a fallback is a stage cut at its deadline or down). */
  clean_p99_ms?: number;
  fallback_p99_ms?: number;
  /** The fallbacks answered with, by stage and cause ("ranking DEADLINE_EXCEEDED"). */
  fallbacks?: Record<string, number>;
  /**
   * p99 of the gateway's own time of the answered requests (its Server-Timing header: from reading the request to
   * writing the answer) and of the rest of their latency (the generator, the network, the wait before the gateway read
   * the request and after it wrote the answer).
   */
  gateway_p99_ms?: number;
  outside_p99_ms?: number;
}

export interface OverloadResult {
  capacity_qps: number;
  curve: CurvePoint[];
  shed_p99_ms_at_2x_capacity: number;
}

/** The curve as a markdown table (pnpm test:overload's and pnpm test:resilience's). */
export function curveTable(curve: readonly CurvePoint[]): string {
  const ms = (value: number | undefined) => value ?? '–';
  return [
    '| offered/s | answered/s | shed/s | answered p99 ms | clean p99 ms | fallback p99 ms | in the gateway p99 ms | outside it p99 ms | shed p99 ms | with a fallback | generator late p99 ms | fallbacks | other |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...curve.map(
      (p) =>
        `| ${p.offered_qps} | ${p.answered_qps} | ${p.shed_qps} | ${p.p99_ms} | ${ms(p.clean_p99_ms)} | ${ms(p.fallback_p99_ms)} | ` +
        `${ms(p.gateway_p99_ms)} | ${ms(p.outside_p99_ms)} | ` +
        `${ms(p.shed_latency_p99_ms)} | ${p.degraded_pct}% | ${ms(p.send_lag_p99_ms)} | ` +
        `${
          p.fallbacks
            ? Object.entries(p.fallbacks)
                .map(([k, n]) => `${k}: ${n}`)
                .join(', ')
            : '–'
        } | ${p.other ? JSON.stringify(p.other) : '–'} |`,
    ),
  ].join('\n');
}

const GENERATOR = join(__dirname, 'open-loop.js');

interface GeneratorResult {
  offered_qps: number;
  answered_qps: number;
  shed_qps: number;
  p99_ms: number;
  shed_p99_ms: number;
  send_lag_p99_ms?: number;
  p99_clean_ms?: number;
  p99_fallback_ms?: number;
  degraded_pct: number;
  fallbacks?: Record<string, number>;
  server_p99_ms?: number;
  outside_p99_ms?: number;
  statuses: Record<string, number>;
}

function generate(args: Record<string, string | number>): Promise<GeneratorResult> {
  return new Promise((resolve, reject) => {
    const argv = Object.entries(args).flatMap(([name, value]) => [`--${name}`, String(value)]);
    const child = spawn(process.execPath, [GENERATOR, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`load generator failed (exit ${code}): ${err.trim() || out.trim()}`));
      else resolve(JSON.parse(last) as GeneratorResult);
    });
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `{ [key]: value }` when the generator measured it (a quantile of no samples comes as null), else nothing. */
function finite<K extends keyof CurvePoint>(key: K, value: number | null | undefined): Partial<Pick<CurvePoint, K>> {
  return typeof value === 'number' && Number.isFinite(value) ? ({ [key]: value } as Partial<Pick<CurvePoint, K>>) : {};
}

export async function runOverload(opts: OverloadOptions): Promise<OverloadResult> {
  const durationS = opts.durationS ?? 10;
  const key = opts.apiKey ?? process.env.RECSYS_API_KEY ?? '';
  const common = { url: opts.gatewayRest, key, users: opts.users ?? 400, 'duration-s': durationS };
  // Warm-up (a fresh pipeline's first requests compile and connect), also when the capacity is given.
  await generate({ ...common, mode: 'closed', concurrency: 4, 'duration-s': Math.min(3, durationS) });
  // The closed loop: as many answers per second as the pipeline gives.
  const capacity = opts.capacityQps ?? (await generate({ ...common, mode: 'closed', concurrency: 16 })).answered_qps;
  if (!(capacity > 0)) throw new Error(`the gateway answered nothing (capacity ${capacity} requests/s)`);
  const curve: CurvePoint[] = [];
  let at2x: number | undefined;
  for (const multiple of opts.multiples ?? [0.5, 1, 1.5, 2, 3]) {
    await pause(1000);
    const r = await generate({ ...common, mode: 'open', rate: Math.max(1, Math.round(capacity * multiple)) });
    const other = Object.fromEntries(Object.entries(r.statuses).filter(([status]) => status !== '200' && status !== '429'));
    curve.push({
      offered_qps: r.offered_qps,
      answered_qps: r.answered_qps,
      shed_qps: r.shed_qps,
      p99_ms: r.p99_ms,
      degraded_pct: r.degraded_pct,
      ...finite('shed_latency_p99_ms', r.shed_p99_ms),
      ...(Object.keys(other).length > 0 ? { other } : {}),
      ...finite('send_lag_p99_ms', r.send_lag_p99_ms),
      ...finite('clean_p99_ms', r.p99_clean_ms),
      ...finite('fallback_p99_ms', r.p99_fallback_ms),
      ...(r.fallbacks && Object.keys(r.fallbacks).length > 0 ? { fallbacks: r.fallbacks } : {}),
      ...finite('gateway_p99_ms', r.server_p99_ms),
      ...finite('outside_p99_ms', r.outside_p99_ms),
    });
    if (multiple === 2) at2x = r.p99_ms;
  }
  return { capacity_qps: capacity, curve, shed_p99_ms_at_2x_capacity: at2x ?? Number.NaN };
}
