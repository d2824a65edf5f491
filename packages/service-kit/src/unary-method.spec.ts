import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Module } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import { common, ranking } from '@recsys/contracts';
import { readCandidateRequest } from './candidate-wire.js';
import { baseServiceConfig, baseServiceEnv, parseEnv } from './config.js';
import { EncodedMessage } from './encoded-message.js';
import { InvalidArgumentError } from './errors.js';
import { createServiceClient } from './grpc-client.js';
import { startGrpcService, type RunningGrpcService } from './grpc-service.js';
import { checkHealth } from './health-client.js';
import { createLogger } from './logger.js';
import { currentRequestContext } from './request-context.js';

@Module({})
class EmptyModule {}

const logger = createLogger('test', 'silent');

/**
 * A Rank served as bytes: the answer lists the candidates' ids in reverse as RankResponse candidates (copied bytes),
 * the model version says the request id the handler saw through the request context.
 */
async function rankBytes(bytes: Uint8Array): Promise<EncodedMessage> {
  const { message, candidates } = readCandidateRequest(ranking.RankRequestSchema, bytes);
  if (message.userId === 'bad') throw new InvalidArgumentError('user_id', 'is bad');
  if (message.userId === 'boom') throw new Error('secret internal detail');
  if (message.userId === 'slow') await new Promise((resolve) => setTimeout(resolve, 300));
  const answer = create(ranking.RankResponseSchema, {
    candidates: candidates.decodeAll().reverse(),
    modelVersion: currentRequestContext()?.requestId ?? '',
  });
  return new EncodedMessage(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, answer));
}

describe('hot unary methods on grpc-js directly (UnaryBytesMethod), over the network and in-process', () => {
  let both: RunningGrpcService;

  beforeAll(async () => {
    both = await startGrpcService({
      name: 'hot-ranking',
      module: EmptyModule,
      services: [ranking.RankingService],
      methods: [{ service: ranking.RankingService, method: 'rank', handle: rankBytes }],
      config: baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0', METRICS_PORT: '0', GRPC_LISTEN: 'both' })),
      logger,
    });
  });

  afterAll(async () => {
    await both?.close();
  });

  it('answers the same, fails the same (the one error mapping) and counts calls on both transports', async () => {
    const network = createServiceClient(ranking.RankingService, both.address);
    const local = createServiceClient(ranking.RankingService, both.inProcessAddress!);
    try {
      const request = { userId: 'u', candidates: [{ itemId: 'a', score: 1 }, { itemId: 'ü-2' }], limit: 2 };
      for (const client of [network, local]) {
        const { Metadata } = await import('@grpc/grpc-js');
        const metadata = new Metadata();
        metadata.set('x-request-id', 'req-42');
        const answer = await client.rank(request, { metadata });
        expect(answer.candidates.map((c) => c.itemId)).toEqual(['ü-2', 'a']);
        expect(answer.modelVersion).toBe('req-42');
        await expect(client.rank({ ...request, userId: 'bad' })).rejects.toMatchObject({
          code: status.INVALID_ARGUMENT,
          details: 'user_id: is bad',
        });
        await expect(client.rank({ ...request, userId: 'boom' })).rejects.toMatchObject({
          code: status.INTERNAL,
          details: expect.not.stringContaining('secret'),
        });
        // Malformed bytes are the caller's error, naming the field.
        await expect(client.raw('rank', new Uint8Array([0x1a, 0x03, 0x0a, 0x05, 0x41]))).rejects.toMatchObject({
          code: status.INVALID_ARGUMENT,
          details: expect.stringMatching(/^candidates\[0\]: /),
        });
      }
      // GetModelInfo has no handler here: it stays a Nest method (UNIMPLEMENTED without a controller).
      await expect(network.getModelInfo({})).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
      expect(await checkHealth(both.address, ranking.RankingService.typeName)).toBe('SERVING');
      const text = await (await fetch(`http://127.0.0.1:${both.metricsPort}/metrics`)).text();
      const count = (code: string) =>
        Number(
          new RegExp(`grpc_server_handled_total\\{method="/recsys.ranking.v1.RankingService/Rank",code="${code}"[^}]*\\} (\\d+)`).exec(
            text,
          )?.[1],
        );
      expect(count('OK')).toBe(2);
      expect(count('INVALID_ARGUMENT')).toBe(4);
      expect(count('INTERNAL')).toBe(2);
      // The caller's deadline ends the call on both transports.
      for (const client of [network, local]) {
        await expect(client.rank({ ...request, userId: 'slow' }, { timeoutMs: 50 })).rejects.toMatchObject({
          code: status.DEADLINE_EXCEEDED,
        });
      }
    } finally {
      network.close();
      local.close();
    }
  });
});

describe('readCandidateRequest against protobuf-es', () => {
  const rng = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;

  it('reads random requests (unknown fields, empty lists, unicode ids) as protobuf-es decodes them, candidates kept as bytes', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const random = rng(seed);
      const n = seed % 7 === 0 ? 0 : Math.floor(random() * 40);
      const candidates = Array.from({ length: n }, (_, i) => {
        const c = create(common.CandidateSchema, {
          itemId: random() < 0.2 ? `ítem-ラ-${seed}-${i}` : `item-${seed}-${i}`,
          score: Math.fround(random()),
          channels: random() < 0.5 ? ['popular'] : [],
          stageScores: random() < 0.5 ? [{ stage: common.Stage.RETRIEVAL, score: 0.5 }] : [],
          createdAtMs: random() < 0.5 ? 1_700_000_000_000n : 0n,
        });
        // An unknown field (number 99, varint) inside some candidates.
        return random() < 0.3
          ? fromBinary(common.CandidateSchema, new Uint8Array([...toBinary(common.CandidateSchema, c), 0x98, 0x06, 7]))
          : c;
      });
      const message = create(ranking.RankRequestSchema, {
        userId: `user-${seed}-ü`,
        context: random() < 0.5 ? { attributes: { device: 'ios' }, recentItems: [{ itemId: 'x' }] } : undefined,
        candidates,
        limit: Math.floor(random() * 10),
        userState: random() < 0.5 ? { found: true, user: { userId: `user-${seed}-ü` }, history: [{ itemId: 'h1' }] } : undefined,
        userHistoryLimit: 5,
      });
      let bytes = toBinary(ranking.RankRequestSchema, message);
      // An unknown top-level field (number 99, bytes) at the end: kept in the decoded rest.
      if (seed % 3 === 0) bytes = new Uint8Array([...bytes, 0x9a, 0x06, 1, 0x41]);
      const read = readCandidateRequest(ranking.RankRequestSchema, bytes);
      const whole = fromBinary(ranking.RankRequestSchema, bytes);
      expect(read.candidates.ids).toEqual(whole.candidates.map((c) => c.itemId));
      expect(read.candidates.decodeAll()).toEqual(whole.candidates);
      expect(toBinary(ranking.RankRequestSchema, read.message)).toEqual(
        toBinary(ranking.RankRequestSchema, create(ranking.RankRequestSchema, { ...whole, candidates: [] })),
      );
    }
  });

  it('refuses malformed bytes naming the field', () => {
    const good = toBinary(ranking.RankRequestSchema, create(ranking.RankRequestSchema, { userId: 'u', candidates: [{ itemId: 'a' }] }));
    // A truncated request.
    expect(() => readCandidateRequest(ranking.RankRequestSchema, good.subarray(0, good.length - 1))).toThrow(/^request: /);
    // A candidate whose own bytes are malformed (a length past its end).
    expect(() => readCandidateRequest(ranking.RankRequestSchema, new Uint8Array([0x1a, 0x03, 0x0a, 0x05, 0x41]))).toThrow(
      /^candidates\[0\]: is not a valid Candidate message/,
    );
    // A wrong wire type for user_id (a varint where a string is due): protobuf-es refuses the rest.
    expect(() => readCandidateRequest(ranking.RankRequestSchema, new Uint8Array([0x08, 0x01]))).toThrow(/^request: /);
  });
});
