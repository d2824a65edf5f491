// bench:pipeline's gRPC load generator, run as its own process so its CPU is not the pipeline's: keeps N calls of
// GatewayService.Recommend in flight for a while (each for a user drawn from user-1..user-U) and prints one JSON line:
// requests answered, errors, answers with a fallback (degradations), and latency percentiles.
//   node grpc-load.js --address 127.0.0.1:50050 --concurrency 8 --duration-s 10 --users 50000 [--k 20] [--seed 1]
import { parseArgs } from 'node:util';
import { gateway } from '@recsys/contracts';
import { createServiceClient } from '@recsys/service-kit';
import { quantile, round } from './stats';

function positive(name: string, text: string | undefined, fallback: number): number {
  const value = Number(text ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name}: expected a positive number, got "${text}"`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string' },
      concurrency: { type: 'string' },
      'duration-s': { type: 'string' },
      users: { type: 'string' },
      k: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (!values.address) throw new Error('--address: the gateway gRPC address is required');
  const concurrency = Math.floor(positive('concurrency', values.concurrency, 1));
  const durationMs = positive('duration-s', values['duration-s'], 10) * 1000;
  const users = Math.floor(positive('users', values.users, 1000));
  const k = Math.floor(positive('k', values.k, 20));
  let state = Math.floor(positive('seed', values.seed, 1)) >>> 0;
  const nextUser = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return `user-${1 + (state % users)}`;
  };
  const client = createServiceClient(gateway.GatewayService, values.address, { defaultTimeoutMs: 10_000 });
  const latencies: number[] = [];
  let errors = 0;
  let degraded = 0;
  const firstError: string[] = [];
  const started = performance.now();
  const until = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        try {
          const answer = await client.recommend({ userId: nextUser(), k });
          latencies.push(performance.now() - t0);
          if (answer.degradations.length > 0) degraded++;
        } catch (error) {
          errors++;
          if (firstError.length === 0) firstError.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  client.close();
  console.log(
    JSON.stringify({
      requests: latencies.length,
      errors,
      degraded,
      duration_ms: round(elapsedMs, 1),
      qps: round(latencies.length / (elapsedMs / 1000), 1),
      p50_ms: round(quantile(latencies, 0.5)),
      p95_ms: round(quantile(latencies, 0.95)),
      p99_ms: round(quantile(latencies, 0.99)),
      ...(firstError.length > 0 ? { first_error: firstError[0] } : {}),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
