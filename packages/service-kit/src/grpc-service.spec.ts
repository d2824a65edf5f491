import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { connect } from 'node:net';
import { Metadata, status } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import { baseServiceConfig, baseServiceEnv, parseEnv } from './config.js';
import { InvalidArgumentError, UnavailableError } from './errors.js';
import { createServiceClient, type ServiceClient } from './grpc-client.js';
import { startGrpcService, type RunningGrpcService } from './grpc-service.js';
import { checkHealth } from './health-client.js';
import { createLogger } from './logger.js';
import { currentRequestContext, type RequestContext } from './request-context.js';

type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

/** What the downstream service saw of each call's context. */
const seenDownstream: RequestContext[] = [];
let downstream: FeatureClient | undefined;

@Controller()
class TestController {
  @GrpcMethod('FeatureService', 'GetUserFeatures')
  async getUserFeatures(request: features.GetUserFeaturesRequest) {
    switch (request.userId) {
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, 400));
        return { found: true, user: { userId: 'slow' } };
      case 'bad':
        throw new InvalidArgumentError('user_id', 'is bad');
      case 'down':
        throw new UnavailableError('Redis at 127.0.0.1:1 is unreachable');
      case 'boom':
        throw new Error('secret internal detail');
      case 'chain':
        await downstream!.getUserFeatures({ userId: 'record' });
        return { found: true };
      case 'record':
        seenDownstream.push({ ...currentRequestContext()! });
        return { found: false };
      default:
        return {
          found: true,
          user: { userId: request.userId },
          history: [{ itemId: 'i1', timestampMs: 1700000000000n, dwellSeconds: 2.5 }],
        };
    }
  }
}

@Module({ controllers: [TestController] })
class TestModule {}

const logger = createLogger('test', 'silent');
const config = baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0', METRICS_PORT: '0' }));

describe('startGrpcService', () => {
  let front: RunningGrpcService;
  let back: RunningGrpcService;
  let client: FeatureClient;

  beforeAll(async () => {
    back = await startGrpcService({ name: 'back', module: TestModule, services: [features.FeatureService], config, logger });
    front = await startGrpcService({ name: 'front', module: TestModule, services: [features.FeatureService], config, logger });
    downstream = createServiceClient(features.FeatureService, back.address);
    client = createServiceClient(features.FeatureService, front.address, { defaultTimeoutMs: 5000 });
  });

  afterAll(async () => {
    client.close();
    downstream?.close();
    await front.close();
    await back.close();
  });

  it('calls with bytes in and bytes out through raw, with the same deadline and errors', async () => {
    const request = toBinary(features.GetUserFeaturesRequestSchema, create(features.GetUserFeaturesRequestSchema, { userId: 'u7' }));
    const bytes = await client.raw('getUserFeatures', request);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(fromBinary(features.GetUserFeaturesResponseSchema, bytes)).toEqual(await client.getUserFeatures({ userId: 'u7' }));
    const slow = toBinary(features.GetUserFeaturesRequestSchema, create(features.GetUserFeaturesRequestSchema, { userId: 'slow' }));
    await expect(client.raw('getUserFeatures', slow, { timeoutMs: 50 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    await expect(client.raw('nope' as 'getUserFeatures', request)).rejects.toThrow('has no unary method nope');
  });

  // Regression (fuzz): bytes that do not decode were answered INTERNAL ("Error deserializing request") by grpc-js.
  it('answers bytes that are not the request message with INVALID_ARGUMENT naming the field', async () => {
    const refusal = async (bytes: number[]) => {
      try {
        await client.raw('getUserFeatures', Uint8Array.from(bytes));
      } catch (error) {
        return error as { code: number; details: string };
      }
      throw new Error('expected a refusal');
    };
    const cases: Array<[bytes: number[], field: string]> = [
      [[0x0a, 0x05, 0x61], 'user_id'], // a string cut short
      [[0x0a, 0x02, 0xff, 0xfe], 'user_id'], // not UTF-8
      [[0x0d, 1, 2, 3, 4], 'user_id'], // fixed32 where a string belongs
      [[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 'history_limit'], // a varint too long
      [[0x00], 'request'], // field number 0
    ];
    for (const [bytes, field] of cases) {
      const error = await refusal(bytes);
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(new RegExp(`^${field}: the request is not a valid recsys.features.v1.GetUserFeaturesRequest`));
    }
    // Unknown fields are skipped, as protobuf requires.
    const known = toBinary(features.GetUserFeaturesRequestSchema, create(features.GetUserFeaturesRequestSchema, { userId: 'u8' }));
    const withUnknown = Uint8Array.from([...known, 0xf8, 0x3f, 0x01]);
    const answer = fromBinary(features.GetUserFeaturesResponseSchema, await client.raw('getUserFeatures', withUnknown));
    expect(answer.user?.userId).toBe('u8');
  });

  it('serves protobuf-es messages over grpc-js', async () => {
    const response = await client.getUserFeatures({ userId: 'u42' });
    expect(response.$typeName).toBe('recsys.features.v1.GetUserFeaturesResponse');
    expect(response.user?.userId).toBe('u42');
    expect(response.history[0]).toMatchObject({ itemId: 'i1', timestampMs: 1700000000000n, dwellSeconds: 2.5 });
  });

  it('reports SERVING on grpc.health.v1 for the server and each service', async () => {
    expect(await checkHealth(front.address)).toBe('SERVING');
    expect(await checkHealth(front.address, 'recsys.features.v1.FeatureService')).toBe('SERVING');
    await expect(checkHealth(front.address, 'no.such.Service')).rejects.toMatchObject({ code: status.NOT_FOUND });
  });

  it('maps domain errors to gRPC codes and hides internal details', async () => {
    await expect(client.getUserFeatures({ userId: 'bad' })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'user_id: is bad',
    });
    await expect(client.getUserFeatures({ userId: 'down' })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    const internal = client.getUserFeatures({ userId: 'boom' });
    await expect(internal).rejects.toMatchObject({ code: status.INTERNAL });
    await expect(internal).rejects.not.toMatchObject({ details: expect.stringContaining('secret') });
  });

  it('propagates the request id and the caller deadline to downstream calls', async () => {
    seenDownstream.length = 0;
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-123');
    const before = Date.now();
    await client.getUserFeatures({ userId: 'chain' }, { timeoutMs: 3000, metadata });
    expect(seenDownstream).toHaveLength(1);
    const seen = seenDownstream[0]!;
    expect(seen.requestId).toBe('req-123');
    // The downstream deadline is the caller's (grpc sends it as a relative timeout, so allow clock slack).
    expect(seen.deadlineMs).toBeGreaterThan(before + 2500);
    expect(seen.deadlineMs).toBeLessThanOrEqual(before + 3000 + 100);
    // When the server received the call: a handler's budget counts from it.
    expect(seen.receivedMs).toBeGreaterThanOrEqual(before);
    expect(seen.receivedMs).toBeLessThanOrEqual(Date.now());
  });

  it('exports request counts by method and code, and latency histograms', async () => {
    await client.getUserFeatures({ userId: 'u1' });
    await client.getUserFeatures({ userId: 'bad' }).catch(() => undefined);
    const text = await (await fetch(`http://127.0.0.1:${front.metricsPort}/metrics`)).text();
    const method = '/recsys.features.v1.FeatureService/GetUserFeatures';
    expect(text).toMatch(new RegExp(`grpc_server_handled_total\\{method="${method}",code="OK",service="front"\\} [1-9]`));
    expect(text).toMatch(new RegExp(`grpc_server_handled_total\\{method="${method}",code="INVALID_ARGUMENT",service="front"\\} [1-9]`));
    expect(text).toContain('grpc_server_handling_seconds_bucket{le="0.005"');
  });
});

describe('logs', () => {
  it('carry the request id of the call that wrote them', async () => {
    const lines: string[] = [];
    const destination = { write: (line: string) => void lines.push(line) };
    const logged = createLogger('logged', 'debug', destination);
    const service = await startGrpcService({
      name: 'logged',
      module: TestModule,
      services: [features.FeatureService],
      config,
      logger: logged,
    });
    const client = createServiceClient(features.FeatureService, service.address);
    try {
      const metadata = new Metadata();
      metadata.set('x-request-id', 'trace-me-42');
      await client.getUserFeatures({ userId: 'down' }, { metadata }).catch(() => undefined);
      const entry = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'rpc failed: dependency unavailable');
      expect(entry).toMatchObject({
        level: 'warn',
        service: 'logged',
        requestId: 'trace-me-42',
        method: '/recsys.features.v1.FeatureService/GetUserFeatures',
        code: 'UNAVAILABLE',
      });
    } finally {
      client.close();
      await service.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('lets in-flight calls finish and refuses new ones', async () => {
    const service = await startGrpcService({ name: 'drain', module: TestModule, services: [features.FeatureService], config, logger });
    const client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 5000 });
    try {
      await client.getUserFeatures({ userId: 'warm-up' });
      const inFlight = client.getUserFeatures({ userId: 'slow' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const closed = service.close();
      await expect(inFlight).resolves.toMatchObject({ user: { userId: 'slow' } });
      await closed;
      await expect(client.getUserFeatures({ userId: 'after' }, { timeoutMs: 1000 })).rejects.toMatchObject({
        code: expect.any(Number),
      });
    } finally {
      client.close();
    }
  });

  it('ends after the shutdown timeout although a connection never became an HTTP/2 session', async () => {
    // A silent TCP connection (a TCP probe, a client that connected while the server was starting and never spoke)
    // keeps grpc-js's listener open after forceShutdown; close() must not wait for it, or SIGTERM ends in SIGKILL.
    const events: string[] = [];
    const service = await startGrpcService({
      name: 'silent',
      module: TestModule,
      services: [features.FeatureService],
      config: { ...config, shutdownTimeoutMs: 300 },
      logger,
      release: () => {
        events.push('released');
      },
    });
    const socket = connect(service.grpcPort, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let hang: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        service.close(),
        new Promise(
          (_, reject) => (hang = setTimeout(() => reject(new Error('close() still waiting 10 s after a 300 ms timeout')), 10_000)),
        ),
      ]);
      expect(events).toEqual(['released']);
    } finally {
      clearTimeout(hang);
      socket.destroy();
    }
  });
});

describe('startGrpcService releases what the service holds', () => {
  it('after the in-flight calls on close, and at once when the service cannot start', async () => {
    const events: string[] = [];
    const service = await startGrpcService({
      name: 'release-test',
      module: TestModule,
      services: [features.FeatureService],
      config,
      logger,
      release: () => {
        events.push('released');
      },
    });
    const client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 5000 });
    const slow = client.getUserFeatures({ userId: 'slow' }).then(() => events.push('slow call answered'));
    // Close once the call is being handled (a fixed sleep raced the connection on a loaded machine).
    while ((await service.metrics.inFlight.get()).values[0]?.value !== 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await service.close();
    await slow;
    client.close();
    expect(events).toEqual(['slow call answered', 'released']);

    // The port is taken by a second server on the same port: starting fails and releases.
    const first = await startGrpcService({ name: 'holder', module: TestModule, services: [features.FeatureService], config, logger });
    let released = 0;
    await expect(
      startGrpcService({
        name: 'clash',
        module: TestModule,
        services: [features.FeatureService],
        config: { ...config, grpcPort: first.grpcPort, metricsPort: -1 },
        logger,
        release: () => {
          released++;
        },
      }),
    ).rejects.toThrow();
    expect(released).toBe(1);
    await first.close();
  });
});
