// What the per-call machinery above grpc-js costs. Servers and one client in this process over loopback gRPC (the
// in-process transport for `inproc`); CPU time of the process per call (process.cpuUsage: client, server and grpc-js
// together), the median over BENCH_ROUNDS rounds that rotate the variants, at 1 and 16 calls in flight. Every call
// is a RankRequest of BENCH_CANDIDATES candidates as the gateway sends them (about 9 KB at 200) sent as bytes, and
// its answer a RankResponse of the same candidates (the same bytes for every call, except `hot_wire`/`nest_decode`):
//   bare           grpc-js alone: Server.register with a handler that answers the prepared bytes, no Nest, no
//                  protobuf, the repo's channel options (the baseline of this run)
//   bare_lean      the same with channelz and retries off on both ends (grpc.enable_channelz, grpc.enable_retries)
//   nest_bare      Nest's gRPC transport (its per-call path: context creation, guards/pipes/interceptors consumers,
//                  the observable it turns the answer into), no interceptor or filter, request kept as bytes
//   nest           + service-kit's interceptor (request context in AsyncLocalStorage, labelled metrics, rxjs) and
//                  exception filter: what every Nest-served method paid per call before this change
//   hot            service-kit's UnaryBytesMethod: grpc-js directly with the thin wrapper (request context, metrics
//                  through bound children, error mapping); what the hot methods run now
//   nest_decode    the generic path: Nest + interceptor, the candidates decoded by protobuf-es and the answer built and
//                  encoded by protobuf-es (the stages before this change decoded the same way but wrote their answer
//                  by hand from the decoded candidates, so this is an upper bound of their cost)
//   hot_wire       the new hot path of a stage: the thin wrapper, candidates read as bytes (readCandidateRequest) and
//                  the answer written by copying them (encodeScoredCandidates)
//   inproc         `hot_wire`'s handler over the in-process transport (all-in-one mode)
// and on their own, in loops (ns per call): AsyncLocalStorage.run around an awaited handler, the metrics of a call
// labelled (prom-client inc/observe with label objects) and through bound children, protobuf-es decode of the request
// against readCandidateRequest. Last line: one JSON object.
import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { Client, credentials, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { common, ranking } from '@recsys/contracts';
import {
  answerBytes,
  baseServiceConfig,
  baseServiceEnv,
  CHANNEL_OPTIONS,
  createLogger,
  createServiceClient,
  EncodedMessage,
  freePort,
  GrpcExceptionFilter,
  GrpcObservabilityInterceptor,
  parseEnv,
  readCandidateRequest,
  ServiceMetrics,
  startGrpcService,
  type RunningGrpcService,
  bestFirst,
  encodeScoredCandidates,
} from '@recsys/service-kit';
import { cpuMicros, quantile, round } from './stats';
import { envNumber } from '../harness/script-env';

const CALLS = envNumber('BENCH_CALLS', 1500);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const CANDIDATES = envNumber('BENCH_CANDIDATES', 200);
const LOOPS = envNumber('BENCH_LOOPS', 200_000);
const CONCURRENCY = [1, 16];
const RANK = '/recsys.ranking.v1.RankingService/Rank';
const LEAN = { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 };
const logger = createLogger('bench', 'warn', { write: () => undefined });

const candidates = Array.from({ length: CANDIDATES }, (_, i) =>
  create(common.CandidateSchema, {
    itemId: `item-${1000 + i}`,
    score: Math.fround(1 - i / CANDIDATES),
    channels: i % 3 === 0 ? ['two_tower', 'popular'] : ['two_tower'],
    stageScores: [
      { stage: common.Stage.RETRIEVAL, score: 0.5 },
      { stage: common.Stage.PRERANKING, score: Math.fround(1 - i / CANDIDATES) },
    ],
    category: `cat-${i % 7}`,
    createdAtMs: 1_700_000_000_000n + BigInt(i),
  }),
);
const requestBytes = Buffer.from(
  toBinary(
    ranking.RankRequestSchema,
    create(ranking.RankRequestSchema, { userId: 'user-1', candidates, limit: CANDIDATES, context: { attributes: { device: 'ios' } } }),
  ),
);
const answerFixed = Buffer.from(
  toBinary(ranking.RankResponseSchema, create(ranking.RankResponseSchema, { candidates, modelVersion: '1' })),
);
const scores = Float32Array.from({ length: CANDIDATES }, (_, i) => Math.fround(((i * 7919) % 1000) / 1000));
const order = bestFirst(scores);

/** The new stage path's work: candidates read as bytes, the answer written by copying them. */
function wireAnswer(bytes: Uint8Array): EncodedMessage {
  const { candidates: list } = readCandidateRequest(ranking.RankRequestSchema, bytes);
  return encodeScoredCandidates(ranking.RankResponseSchema, common.Stage.RANKING, list, scores, order, list.length, '1');
}

/** The old stage path's work: the request decoded by protobuf-es (the Nest method's deserialiser), the answer built and encoded. */
function decodedAnswer(request: ranking.RankRequest): EncodedMessage {
  const answer = create(ranking.RankResponseSchema, {
    candidates: Array.from(order, (k) => {
      const c = request.candidates[k]!;
      return {
        ...c,
        score: scores[k]!,
        stageScores: [...c.stageScores, create(common.StageScoreSchema, { stage: common.Stage.RANKING, score: scores[k]! })],
      };
    }),
    modelVersion: '1',
  });
  return new EncodedMessage(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, answer));
}

@Controller()
class FixedController {
  @GrpcMethod('RankingService', 'Rank')
  rank(): EncodedMessage {
    return new EncodedMessage(ranking.RankResponseSchema, answerFixed);
  }
}

@Module({ controllers: [FixedController] })
class FixedModule {}

@Controller()
class DecodingController {
  @GrpcMethod('RankingService', 'Rank')
  rank(request: ranking.RankRequest): EncodedMessage {
    return decodedAnswer(request);
  }
}

@Module({ controllers: [DecodingController] })
class DecodingModule {}

/** A package definition whose Rank keeps the request bytes (no protobuf-es): Nest's per-call path alone. */
const bytesDefinition = {
  'recsys.ranking.v1.RankingService': {
    Rank: {
      path: RANK,
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: answerBytes,
      responseDeserialize: (bytes: Buffer) => bytes,
      originalName: 'rank',
    },
  },
};

async function nestServer(withObservability: boolean, port: number): Promise<() => Promise<void>> {
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(FixedModule, {
    transport: Transport.GRPC,
    options: {
      url: `127.0.0.1:${port}`,
      package: 'recsys.ranking.v1',
      packageDefinition: bytesDefinition as never,
      channelOptions: { ...CHANNEL_OPTIONS },
    },
    logger: false,
  });
  if (withObservability) {
    app.useGlobalInterceptors(new GrpcObservabilityInterceptor(new ServiceMetrics('nest'), logger));
    app.useGlobalFilters(new GrpcExceptionFilter());
  }
  await app.listen();
  return () => app.close();
}

async function bareServer(options: Record<string, number>): Promise<{ port: number; close: () => void }> {
  const server = new Server({ ...CHANNEL_OPTIONS, ...options });
  server.register(
    RANK,
    (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, answerFixed),
    (value: Buffer) => value,
    (bytes: Buffer) => bytes,
    'unary',
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { port, close: () => server.forceShutdown() };
}

const config = (listen: string) =>
  baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0', METRICS_PORT: '-1', GRPC_LISTEN: listen, LOG_LEVEL: 'warn' }));

type Send = () => Promise<unknown>;

/** A raw grpc-js client (identity serialisers) with the given extra channel options. */
function rawClient(port: number, options: Record<string, number> = {}): { send: Send; close: () => void } {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), { ...CHANNEL_OPTIONS, ...options });
  const send: Send = () =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        RANK,
        (value: Buffer) => value,
        (bytes: Buffer) => bytes,
        requestBytes,
        (error, answer) => (error ? reject(error) : resolve(answer)),
      ),
    );
  return { send, close: () => client.close() };
}

/** CPU microseconds of this process per call, `calls` calls with `c` in flight. */
async function cpuPerCall(send: Send, c: number, calls: number): Promise<number> {
  let next = 0;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next++ < calls) await send();
    }),
  );
  return cpuMicros(before) / calls;
}

/** Nanoseconds per iteration of `body`, `loops` times. */
async function nsPer(loops: number, body: () => unknown): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < loops; i++) {
    const value = body();
    if (value instanceof Promise) await value;
  }
  return Number(process.hrtime.bigint() - started) / loops;
}

async function micro(): Promise<Record<string, number>> {
  const storage = new AsyncLocalStorage<{ id: string }>();
  const handler = async () => {
    await null;
    return storage.getStore();
  };
  const metrics = new ServiceMetrics('micro');
  const recorder = metrics.recorder(RANK);
  const out: Record<string, number> = {};
  for (let round = 0; round < 2; round++) {
    // The first round warms the code; the second is kept.
    out.await_handler_ns = await nsPer(LOOPS, () => handler());
    out.als_run_await_handler_ns = await nsPer(LOOPS, () => storage.run({ id: 'r' }, handler));
    out.metrics_labelled_ns = await nsPer(LOOPS, () => {
      metrics.handled.inc({ method: RANK, code: 'OK' });
      metrics.latency.observe({ method: RANK }, 0.001);
    });
    out.metrics_bound_ns = await nsPer(LOOPS, () => recorder.done(0, 0.001));
    out.decode_request_protobuf_es_ns = await nsPer(LOOPS / 100, () => fromBinary(ranking.RankRequestSchema, requestBytes));
    out.read_request_wire_ns = await nsPer(LOOPS / 100, () => readCandidateRequest(ranking.RankRequestSchema, requestBytes));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v)]));
}

async function main(): Promise<void> {
  const closers: (() => unknown)[] = [];
  try {
    const bare = await bareServer({});
    closers.push(bare.close);
    const lean = await bareServer(LEAN);
    closers.push(lean.close);
    const nestBarePort = await freePort();
    closers.push(await nestServer(false, nestBarePort));
    const nestPort = await freePort();
    closers.push(await nestServer(true, nestPort));
    const started: RunningGrpcService[] = [];
    const hot = await startGrpcService({
      name: 'bench-hot',
      module: class {},
      services: [ranking.RankingService],
      methods: [
        {
          service: ranking.RankingService,
          method: 'rank',
          handle: () => Promise.resolve(new EncodedMessage(ranking.RankResponseSchema, answerFixed)),
        },
      ],
      config: config('network'),
      logger,
    });
    started.push(hot);
    const nestDecode = await startGrpcService({
      name: 'bench-nest-decode',
      module: DecodingModule,
      services: [ranking.RankingService],
      config: config('network'),
      logger,
    });
    started.push(nestDecode);
    const hotWire = await startGrpcService({
      name: 'bench-hot-wire',
      module: class {},
      services: [ranking.RankingService],
      methods: [{ service: ranking.RankingService, method: 'rank', handle: (bytes) => Promise.resolve(wireAnswer(bytes)) }],
      config: config('both'),
      logger,
    });
    started.push(hotWire);
    for (const s of started) closers.push(() => s.close());

    const clients: Record<string, { send: Send; close: () => void }> = {
      bare: rawClient(bare.port),
      bare_lean: rawClient(lean.port, LEAN),
      nest_bare: rawClient(nestBarePort),
      nest: rawClient(nestPort),
      hot: rawClient(hot.grpcPort),
      nest_decode: rawClient(nestDecode.grpcPort),
      hot_wire: rawClient(hotWire.grpcPort),
    };
    const local = createServiceClient(ranking.RankingService, hotWire.inProcessAddress!);
    clients.inproc = { send: () => local.raw('rank', requestBytes), close: () => local.close() };
    for (const client of Object.values(clients)) closers.push(client.close);
    // Every variant answers (and warms up) before anything is measured.
    const sizes: Record<string, number> = {};
    for (const [name, client] of Object.entries(clients)) {
      const answer = (await client.send()) as Uint8Array;
      sizes[name] = answer.length;
      if (fromBinary(ranking.RankResponseSchema, answer).candidates.length !== CANDIDATES) throw new Error(`${name}: a short answer`);
      await cpuPerCall(client.send, 16, 300);
    }

    const names = Object.keys(clients);
    const samples: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      // Each round starts at another variant, so drift in the machine's load hits them alike.
      const rotated = [...names.slice(r % names.length), ...names.slice(0, r % names.length)];
      for (const c of CONCURRENCY) {
        for (const name of rotated) {
          (globalThis as { gc?: () => void }).gc?.();
          (samples[`${name}_c${c}`] ??= []).push(await cpuPerCall(clients[name]!.send, c, CALLS));
        }
      }
    }
    const result: Record<string, number | string> = {
      candidates: CANDIDATES,
      request_bytes: requestBytes.length,
      answer_bytes: answerFixed.length,
      calls_per_block: CALLS,
      rounds: ROUNDS,
      node_version: process.version,
      load_average_1m: round((await import('node:os')).loadavg()[0]!, 2),
    };
    for (const c of CONCURRENCY) {
      const bareUs = quantile(samples[`bare_c${c}`]!, 0.5);
      for (const name of names) {
        const us = quantile(samples[`${name}_c${c}`]!, 0.5);
        result[`${name}_cpu_us_c${c}`] = round(us, 1);
        if (name !== 'bare') result[`${name}_over_bare_c${c}`] = round(us / bareUs, 3);
      }
    }
    Object.assign(result, await micro());
    for (const c of CONCURRENCY) {
      console.log(`c=${c}: CPU µs per call (both ends) ` + names.map((name) => `${name} ${result[`${name}_cpu_us_c${c}`]}`).join(', '));
    }
    console.log(
      `per call, alone: AsyncLocalStorage.run ${(result.als_run_await_handler_ns as number) - (result.await_handler_ns as number)} ns; ` +
        `metrics labelled ${result.metrics_labelled_ns} ns, bound ${result.metrics_bound_ns} ns; ` +
        `request decode protobuf-es ${result.decode_request_protobuf_es_ns} ns, wire ${result.read_request_wire_ns} ns`,
    );
    console.log(JSON.stringify(result));
  } finally {
    for (const close of closers.reverse()) await close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
