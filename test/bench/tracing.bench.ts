// What tracing costs per call. Two services in this process over loopback gRPC (service-kit's server and typed
// client, the path every stage call takes): a caller calls `front`, whose handler calls `back` and logs a line, so
// one request is two hops, two server calls, two client calls and a log line. CPU time of the process per request
// (process.cpuUsage, all of it: client, both servers, grpc-js; the median of the rounds) and wall time per request, BENCH_REQUESTS sequential
// requests per phase, in phases that alternate BENCH_ROUNDS times so drift hits them alike:
//   off          tracing off (the default; the baseline of this run)
//   unsampled    tracing on, OTEL_TRACES_SAMPLER=always_off (context still propagated, nothing recorded)
//   sampled      tracing on, every span recorded and exported over OTLP/HTTP protobuf to a sink in this process
// and, on their own, the hooks the off path runs per request (server and client span starts that return at once,
// the log mixin's trace lookup) timed in a loop: what the off path adds to a call. Last line: one JSON object.
import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import {
  baseServiceConfig,
  baseServiceEnv,
  createLogger,
  createServiceClient,
  parseEnv,
  startClientSpan,
  startGrpcService,
  startServerSpan,
  startTracing,
  traceLogFields,
  type ServiceClient,
} from '@recsys/service-kit';
import { cpuMicros, quantile, round } from './stats';
import { envNumber } from '../harness/script-env';

const REQUESTS = envNumber('BENCH_REQUESTS', 1000);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const HOOK_LOOPS = envNumber('BENCH_HOOK_LOOPS', 1_000_000);

type FeatureClient = ServiceClient<typeof features.FeatureService.method>;
let downstream: FeatureClient | undefined;
// A logger at info that writes nowhere: the mixin (request id, trace ids) still runs for every line.
const logger = createLogger('bench', 'info', { write: () => undefined });

@Controller()
class ChainController {
  @GrpcMethod('FeatureService', 'GetUserFeatures')
  async getUserFeatures(request: features.GetUserFeaturesRequest) {
    if (request.userId === 'front') {
      await downstream!.getUserFeatures({ userId: 'back' });
      logger.info('front served');
      return { found: true };
    }
    return { found: false };
  }
}

@Module({ controllers: [ChainController] })
class ChainModule {}

type Phase = 'off' | 'unsampled' | 'sampled';

interface Sample {
  cpuUs: number;
  wallUs: number[];
}

async function main(): Promise<void> {
  // The OTLP sink: accepts and counts what the exporter sends (no decoding: its CPU is not the services').
  let exportedBytes = 0;
  let exports = 0;
  const sink = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (exportedBytes += chunk.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

  const config = baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0' }));
  const silent = createLogger('bench', 'silent');
  const back = await startGrpcService({ name: 'back', module: ChainModule, services: [features.FeatureService], config, logger: silent });
  const front = await startGrpcService({ name: 'front', module: ChainModule, services: [features.FeatureService], config, logger: silent });
  downstream = createServiceClient(features.FeatureService, back.address, { defaultTimeoutMs: 5000 });
  const client = createServiceClient(features.FeatureService, front.address, { defaultTimeoutMs: 5000 });

  const run = async (phase: Phase, requests: number): Promise<Sample> => {
    const env: Record<string, string> =
      phase === 'off'
        ? {}
        : {
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
            OTEL_TRACES_SAMPLER: phase === 'sampled' ? 'always_on' : 'always_off',
          };
    // The exporter reads its endpoint from the process environment, as in a service.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    const tracing = phase === 'off' ? undefined : startTracing({ serviceName: 'bench', env });
    const wallUs: number[] = [];
    try {
      const cpu = process.cpuUsage();
      for (let i = 0; i < requests; i++) {
        const started = process.hrtime.bigint();
        await client.getUserFeatures({ userId: 'front' });
        wallUs.push(Number(process.hrtime.bigint() - started) / 1e3);
      }
      const used = cpuMicros(cpu);
      // The export of the last spans is part of the sampled phase's cost.
      await tracing?.flush();
      return { cpuUs: (phase === 'sampled' ? cpuMicros(cpu) : used) / requests, wallUs };
    } finally {
      await tracing?.release();
    }
  };

  // BENCH_PHASES=off runs the baseline alone (e.g. against another build of service-kit).
  const phases = (process.env.BENCH_PHASES ?? 'off,unsampled,sampled').split(',') as Phase[];
  for (const phase of phases) await run(phase, Math.min(300, REQUESTS)); // warm-up
  const samples: Record<Phase, Sample[]> = { off: [], unsampled: [], sampled: [] };
  for (let round = 0; round < ROUNDS; round++) for (const phase of phases) samples[phase].push(await run(phase, REQUESTS));

  // The off path's hooks alone, per request: 2 server spans, 2 client spans, 1 log line's trace lookup.
  const metadata = new Metadata();
  const hooks = () => {
    for (let k = 0; k < 2; k++) {
      startServerSpan('/p.S/M', metadata, 'r')?.run(() => undefined);
      startClientSpan('/p.S/M', metadata, 'a')?.endGrpc(0);
    }
    traceLogFields();
  };
  for (let i = 0; i < Math.min(HOOK_LOOPS, 10_000); i++) hooks();
  // CPU time, not wall time: other processes on a loaded machine do not count.
  const hookCpu = process.cpuUsage();
  for (let i = 0; i < HOOK_LOOPS; i++) hooks();
  const hooksNs = (cpuMicros(hookCpu) * 1000) / HOOK_LOOPS;

  client.close();
  downstream.close();
  await front.close();
  await back.close();
  await new Promise<void>((resolve) => sink.close(() => resolve()));

  const median = (values: number[]) => quantile(values, 0.5);
  const cpu = (phase: Phase) => median(samples[phase].map((s) => s.cpuUs));
  const wall = (phase: Phase, q: number) =>
    quantile(
      samples[phase].flatMap((s) => s.wallUs),
      q,
    );
  for (const phase of phases) {
    console.log(
      `${phase.padEnd(9)} cpu ${cpu(phase).toFixed(1)} µs/request (rounds: ${samples[phase].map((s) => s.cpuUs.toFixed(1)).join(', ')})` +
        `  wall p50 ${wall(phase, 0.5).toFixed(1)} µs, p99 ${wall(phase, 0.99).toFixed(1)} µs`,
    );
  }
  console.log(`off-path hooks: ${hooksNs.toFixed(1)} ns per request (${HOOK_LOOPS} loops); ${exports} exports, ${exportedBytes} bytes`);
  console.log(
    JSON.stringify({
      requests_per_phase: REQUESTS,
      rounds: ROUNDS,
      hops_per_request: 2,
      cpu_us_per_request_off: round(cpu('off'), 1),
      cpu_us_per_request_unsampled: round(cpu('unsampled'), 1),
      cpu_us_per_request_sampled: round(cpu('sampled'), 1),
      cpu_ratio_unsampled: round(cpu('unsampled') / cpu('off'), 3),
      cpu_ratio_sampled: round(cpu('sampled') / cpu('off'), 3),
      p50_us_off: round(wall('off', 0.5), 1),
      p50_us_sampled: round(wall('sampled', 0.5), 1),
      off_hooks_ns_per_request: round(hooksNs, 1),
      off_hooks_share_of_cpu: round(hooksNs / 1000 / cpu('off'), 6),
      spans_exported_bytes: exportedBytes,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
