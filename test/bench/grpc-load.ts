// bench:pipeline's gRPC load generator, run as its own process so its CPU is not the pipeline's: keeps N calls of
// GatewayService.Recommend in flight for a while (each for a user drawn from user-1..user-U) and prints one JSON line:
// requests answered, errors, answers with a fallback (degradations), latency percentiles and its own CPU time (cpu_ms).
//   node grpc-load.js --address 127.0.0.1:50050 --concurrency 8 --duration-s 10 --users 50000 [--k 20] [--seed 1]
// test:resilience's steady load uses it too, with these options:
//   --rest http://127.0.0.1:8080   POST /v1/recommendations on the gateway's REST API instead of gRPC (--address unused)
//   --rate 40                      open loop: start 40 requests/s (spread over the clients) instead of back to back
//   --records                      one JSON line per request as it ends ({"r":[start ms since epoch, ms, outcome, fallbacks]})
//   --duration-s 0                 run until SIGTERM or SIGINT, then print the summary
//   --api-key KEY                  sent as Authorization: Bearer KEY (REST header, gRPC metadata)
// An outcome is "ok", "degraded", "http <status>" or "grpc <code name>" for an answered error, or "lost" when no answer
// came (connection refused or reset, or no answer within --timeout-ms, default 10 s).
import { parseArgs } from 'node:util';
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { common, gateway } from '@recsys/contracts';
import { createServiceClient } from '@recsys/service-kit';
import { quantile, round } from './stats';

function positive(name: string, text: string | undefined, fallback: number, zero = false): number {
  const value = Number(text ?? fallback);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zero))
    throw new Error(`--${name}: expected a positive number, got "${text}"`);
  return value;
}

interface Outcome {
  outcome: string;
  fallbacks: string[];
}

/** Codes a client sees when the server never answered (the call did not reach it, or its answer never came). */
const NO_ANSWER = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED]);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string' },
      rest: { type: 'string' },
      concurrency: { type: 'string' },
      'duration-s': { type: 'string' },
      users: { type: 'string' },
      k: { type: 'string' },
      seed: { type: 'string' },
      rate: { type: 'string' },
      records: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      'api-key': { type: 'string' },
    },
  });
  if (!values.address && !values.rest) throw new Error('--address: the gateway gRPC address is required (or --rest URL)');
  const concurrency = Math.floor(positive('concurrency', values.concurrency, 1));
  const durationMs = positive('duration-s', values['duration-s'], 10, true) * 1000;
  const users = Math.floor(positive('users', values.users, 1000));
  const k = Math.floor(positive('k', values.k, 20));
  const rate = values.rate === undefined ? 0 : positive('rate', values.rate, 1);
  const timeoutMs = positive('timeout-ms', values['timeout-ms'], 10_000);
  let state = Math.floor(positive('seed', values.seed, 1)) >>> 0;
  const nextUser = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return `user-${1 + (state % users)}`;
  };
  const client = values.rest ? undefined : createServiceClient(gateway.GatewayService, values.address!, { defaultTimeoutMs: timeoutMs });
  const apiKey = values['api-key'];
  const metadata = new Metadata();
  if (apiKey) metadata.set('authorization', `Bearer ${apiKey}`);
  const restUrl = values.rest ? `${values.rest.replace(/\/$/, '')}/v1/recommendations` : '';

  async function callOnce(userId: string): Promise<Outcome> {
    if (client) {
      try {
        const answer = await client.recommend({ userId, k }, apiKey ? { metadata } : {});
        const fallbacks = answer.degradations.map(
          (d) => `${common.Stage[d.stage] ?? d.stage}: ${d.fallback} (${common.DegradationCause[d.cause] ?? d.cause})`,
        );
        return { outcome: fallbacks.length > 0 ? 'degraded' : 'ok', fallbacks };
      } catch (error) {
        const code = (error as { code?: number }).code;
        if (code === undefined || NO_ANSWER.has(code)) return { outcome: 'lost', fallbacks: [] };
        return { outcome: `grpc ${GrpcStatus[code] ?? code}`, fallbacks: [] };
      }
    }
    let response: Response;
    try {
      response = await fetch(restUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
        body: JSON.stringify({ user_id: userId, k }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      return { outcome: 'lost', fallbacks: [] };
    }
    let body: { degradations?: { stage?: string; fallback?: string; cause?: string }[] } = {};
    try {
      body = (await response.json()) as typeof body;
    } catch {
      return { outcome: response.ok ? 'lost' : `http ${response.status}`, fallbacks: [] };
    }
    if (response.status !== 200) return { outcome: `http ${response.status}`, fallbacks: [] };
    // The JSON names carry the enum's prefix (STAGE_RANKING, DEGRADATION_CAUSE_UNAVAILABLE); gRPC's are without it.
    const fallbacks = (body.degradations ?? []).map(
      (d) => `${d.stage?.replace(/^STAGE_/, '')}: ${d.fallback} (${d.cause?.replace(/^DEGRADATION_CAUSE_/, '')})`,
    );
    return { outcome: fallbacks.length > 0 ? 'degraded' : 'ok', fallbacks };
  }

  const latencies: number[] = [];
  let errors = 0;
  let degraded = 0;
  let lost = 0;
  const firstError: string[] = [];
  const started = performance.now();
  // The load's own CPU (this process, every thread), from here: the client's start-up is not the load.
  const cpuBefore = process.cpuUsage();
  let stopping = false;
  const stop = () => (stopping = true);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const until = durationMs > 0 ? started + durationMs : Number.POSITIVE_INFINITY;
  const running = () => !stopping && performance.now() < until;
  const intervalMs = rate > 0 ? (1000 * concurrency) / rate : 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      // Open loop: each client starts its requests on its own schedule, staggered against the others.
      let next = performance.now() + (intervalMs * worker) / concurrency;
      while (running()) {
        if (intervalMs > 0) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          if (!running()) break;
          next = Math.max(next + intervalMs, performance.now() - intervalMs);
        }
        const startedAt = Date.now();
        const t0 = performance.now();
        const { outcome, fallbacks } = await callOnce(nextUser());
        const ms = performance.now() - t0;
        if (outcome === 'ok' || outcome === 'degraded') {
          latencies.push(ms);
          if (outcome === 'degraded') degraded++;
        } else {
          errors++;
          if (outcome === 'lost') lost++;
          if (firstError.length === 0) firstError.push(outcome);
        }
        if (values.records) process.stdout.write(`${JSON.stringify({ r: [startedAt, round(ms, 1), outcome, fallbacks] })}\n`);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  client?.close();
  console.log(
    JSON.stringify({
      requests: latencies.length,
      errors,
      lost,
      degraded,
      duration_ms: round(elapsedMs, 1),
      qps: round(latencies.length / (elapsedMs / 1000), 1),
      p50_ms: round(quantile(latencies, 0.5)),
      p95_ms: round(quantile(latencies, 0.95)),
      p99_ms: round(quantile(latencies, 0.99)),
      cpu_ms: round((cpu.user + cpu.system) / 1000, 1),
      ...(firstError.length > 0 ? { first_error: firstError[0] } : {}),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
