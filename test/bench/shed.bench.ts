// What one shed request costs the gateway. A gateway in this process (startGatewayService, the product's wiring: auth
// on, admission control) whose one in-flight slot is held and whose queue is 0, so that every request is shed (429);
// a closed loop of BENCH_CONCURRENCY requests in flight from the overload suite's load generator (its own process, so
// its CPU is not counted) for BENCH_SECONDS per round. CPU time of this process per shed request (process.cpuUsage,
// all of it: HTTP parsing, middleware, the answer; the median of BENCH_ROUNDS rounds). The stages are absent (nothing
// is admitted, so none is called). The baseline, in the same rounds: the same requests sent to a route the gateway does
// not have (404), which pass the same access control and are read, parsed and routed by Nest before their answer: what
// a refused request costs when nothing refuses it early. Last line: one JSON object.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createLogger } from '@recsys/service-kit';
import { loadGatewayConfig, startGatewayService } from '@recsys/gateway';
import { cpuMicros, quantile, round } from './stats';
import { envNumber } from '../harness/script-env';

const ROUNDS = envNumber('BENCH_ROUNDS', 5);
const SECONDS = envNumber('BENCH_SECONDS', 4, 'positive');
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 16);
const KEY = 'shed-bench-key-0123456789abcdef';
const GENERATOR = join(__dirname, '..', 'resilience', 'open-loop.js');

interface GeneratorResult {
  answered_qps: number;
  shed_qps: number;
  statuses: Record<string, number>;
}

const SHED_PATH = '/v1/recommendations';
const UNROUTED_PATH = '/v1/no-such-route';

function generate(url: string, path: string): Promise<GeneratorResult> {
  return new Promise((resolve, reject) => {
    const args = [
      '--url',
      url,
      '--path',
      path,
      '--key',
      KEY,
      '--mode',
      'closed',
      '--concurrency',
      String(CONCURRENCY),
      '--duration-s',
      String(SECONDS),
    ];
    const child = spawn(process.execPath, [GENERATOR, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`load generator failed (exit ${code}): ${out}`));
      else resolve(JSON.parse(last) as GeneratorResult);
    });
  });
}

async function main(): Promise<void> {
  const nowhere = '127.0.0.1:1';
  const config = loadGatewayConfig({
    GRPC_PORT: '0',
    HTTP_PORT: '0',
    API_KEYS: `bench:${KEY}`,
    RATE_LIMIT_PER_SECOND: '0',
    ADMISSION_MAX_IN_FLIGHT: '1',
    ADMISSION_ADAPTIVE: 'false',
    ADMISSION_MAX_QUEUE: '0',
    FEATURES_ADDRESS: nowhere,
    RETRIEVAL_ADDRESS: nowhere,
    PRERANKING_ADDRESS: nowhere,
    RANKING_ADDRESS: nowhere,
    RERANKING_ADDRESS: nowhere,
    POPULAR_REFRESH_MS: '3600000',
  });
  const gateway = await startGatewayService(config, createLogger('shed-bench', 'silent'));
  // The one slot, held for the whole run: every request is shed.
  let releaseSlot: () => void = () => undefined;
  const held = gateway.admission.run(() => new Promise<void>((resolve) => (releaseSlot = resolve)));
  const url = `http://127.0.0.1:${gateway.httpPort}`;
  /** CPU µs of this process per answer of `status` to `path`, every answer being one. */
  const perAnswer = async (path: string, status: string): Promise<number> => {
    const before = process.cpuUsage();
    const result = await generate(url, path);
    const cpu = cpuMicros(before);
    const answers = result.statuses[status] ?? 0;
    const others = Object.entries(result.statuses).filter(([s]) => s !== status);
    if (others.length > 0 || answers === 0) throw new Error(`${path}: not every answer was ${status}: ${JSON.stringify(result.statuses)}`);
    return cpu / answers;
  };
  const perShed: number[] = [];
  const perUnrouted: number[] = [];
  try {
    // Warm-up: JIT, connections.
    await perAnswer(SHED_PATH, '429');
    await perAnswer(UNROUTED_PATH, '404');
    for (let round_ = 0; round_ < ROUNDS; round_++) {
      // Alternating, so that drift in the machine's load hits both alike.
      perShed.push(await perAnswer(SHED_PATH, '429'));
      perUnrouted.push(await perAnswer(UNROUTED_PATH, '404'));
      process.stderr.write(`round ${round_ + 1}: ${round(perShed.at(-1)!, 1)} µs CPU per shed, ${round(perUnrouted.at(-1)!, 1)} per 404\n`);
    }
  } finally {
    releaseSlot();
    await held;
    await gateway.close();
  }
  console.log(
    JSON.stringify({
      rounds: ROUNDS,
      seconds: SECONDS,
      concurrency: CONCURRENCY,
      cpu_us_per_shed_median: round(quantile(perShed, 0.5), 1),
      cpu_us_per_shed: perShed.map((v) => round(v, 1)),
      baseline_cpu_us_per_404_median: round(quantile(perUnrouted, 0.5), 1),
      baseline_cpu_us_per_404: perUnrouted.map((v) => round(v, 1)),
      shed_over_404: round(quantile(perShed, 0.5) / quantile(perUnrouted, 0.5), 3),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
