// What one level of load gave, the same for both generators of bench:pipeline (wrk over REST, grpc-load.ts over gRPC):
// the answered requests only. A refusal (a 429 while the gateway sheds, a 5xx) or a socket error is counted as failed,
// never as a request: neither is a recommendation, and counted as one it raised the level's requests/s and lowered its
// CPU per request.
import { round, ticksToMs } from './stats';

export interface LoadResult {
  /** Requests answered 200 (REST) or OK (gRPC), with or without a fallback. */
  requests: number;
  qps: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  /** Answers with a fallback, as a share of the answers. */
  degraded: number;
  /** Refused, failed or unanswered requests. */
  failed: number;
  /** The load generator's own CPU over the level, in ms (undefined where it could not be read). */
  generatorCpuMs?: number;
}

/** The JSON line test/bench/wrk/recommend.lua prints: every response is `answered`, the non-200 among them `non200`. */
export interface WrkCounts {
  answered: number;
  non200: number;
  degraded: number;
  socket_errors: number;
  duration_us: number;
  p50_us: number;
  p95_us: number;
  p99_us: number;
  /** wrk's own CPU time (every thread) in clock ticks, -1 where /proc could not be read. */
  cpu_ticks?: number;
}

/**
 * wrk's counts as a level. Its latency percentiles cover every response, refusals included (wrk's script cannot see a
 * response's latency): a level with any failed request is not counted as capacity (bench:pipeline's maxQps).
 */
export function wrkLoadResult(r: WrkCounts): LoadResult {
  const ok = r.answered - r.non200;
  return {
    requests: ok,
    qps: round(ok / (r.duration_us / 1e6), 1),
    p50_ms: round(r.p50_us / 1000),
    p95_ms: round(r.p95_us / 1000),
    p99_ms: round(r.p99_us / 1000),
    degraded: round(ok > 0 ? r.degraded / ok : 0, 4),
    failed: r.non200 + r.socket_errors,
    ...(r.cpu_ticks !== undefined && r.cpu_ticks >= 0 ? { generatorCpuMs: ticksToMs(r.cpu_ticks) } : {}),
  };
}
