import { create, toBinary } from '@bufbuild/protobuf';
import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata, status, type ServerUnaryCall } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import { baseServiceConfig, baseServiceEnv, parseEnv } from './config.js';
import { InvalidArgumentError, UnavailableError } from './errors.js';
import { createServiceClient, type ServiceClient } from './grpc-client.js';
import { startGrpcService, type RunningGrpcService } from './grpc-service.js';
import { checkHealth } from './health-client.js';
import { inProcessAddresses } from './in-process.js';
import { createLogger } from './logger.js';
import { currentRequestContext, type RequestContext } from './request-context.js';

type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

/** What the second service saw of each chained call's context, and whether slow calls learned they were cancelled. */
const seenDownstream: RequestContext[] = [];
const cancelledCalls: string[] = [];
let downstream: FeatureClient | undefined;

@Controller()
class TestController {
  @GrpcMethod('FeatureService', 'GetUserFeatures')
  async getUserFeatures(request: features.GetUserFeaturesRequest, _metadata: Metadata, call: ServerUnaryCall<unknown, unknown>) {
    switch (request.userId) {
      case 'slow':
        await new Promise((resolve) => setTimeout(resolve, 300));
        if (call.cancelled) cancelledCalls.push(request.userId);
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
          user: { userId: request.userId, attributes: { segment: 'a' } },
          history: [{ itemId: 'i1', timestampMs: 1700000000000n, dwellSeconds: 2.5 }],
        };
    }
  }
}

@Module({ controllers: [TestController] })
class TestModule {}

const logger = createLogger('test', 'silent');
const configFor = (listen: string) =>
  baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0', METRICS_PORT: '0', GRPC_LISTEN: listen }));

/** Calls a client and returns what it resolved or rejected with (code and details), to compare two transports. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await call };
  } catch (error) {
    const { code, details, message } = error as { code: number; details: string; message: string };
    return { code, details, message };
  }
}

describe('the in-process transport (all-in-one mode)', () => {
  // One service on both transports (as the gateway and the feature service run in all-in-one mode) and one in-process only.
  let both: RunningGrpcService;
  let inner: RunningGrpcService;
  let network: FeatureClient;
  let local: FeatureClient;

  beforeAll(async () => {
    inner = await startGrpcService({
      name: 'inner',
      module: TestModule,
      services: [features.FeatureService],
      config: configFor('in-process'),
      logger,
    });
    both = await startGrpcService({
      name: 'both',
      module: TestModule,
      services: [features.FeatureService],
      config: configFor('both'),
      logger,
    });
    downstream = createServiceClient(features.FeatureService, inner.address);
    network = createServiceClient(features.FeatureService, both.address, { defaultTimeoutMs: 5000 });
    local = createServiceClient(features.FeatureService, both.inProcessAddress!, { defaultTimeoutMs: 5000 });
  });

  afterAll(async () => {
    network.close();
    local.close();
    downstream?.close();
    await both.close();
    await inner.close();
  });

  it('registers services under inproc://<name> without a port when in-process only', () => {
    expect(inner.address).toBe('inproc://inner');
    expect(inner.grpcPort).toBe(-1);
    expect(both.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(both.inProcessAddress).toBe('inproc://both');
    expect(inProcessAddresses()).toEqual(expect.arrayContaining(['inproc://inner', 'inproc://both']));
  });

  it('answers with the same bytes as the gRPC path for the same request bytes', async () => {
    const request = toBinary(features.GetUserFeaturesRequestSchema, create(features.GetUserFeaturesRequestSchema, { userId: 'u7' }));
    const overNetwork = await network.raw('getUserFeatures', request);
    const inProcess = await local.raw('getUserFeatures', request);
    expect(inProcess.length).toBeGreaterThan(10);
    expect(Buffer.from(inProcess).equals(Buffer.from(overNetwork))).toBe(true);
    expect(await local.getUserFeatures({ userId: 'u7' })).toEqual(await network.getUserFeatures({ userId: 'u7' }));
  });

  it('maps errors to the same codes and details as the gRPC path, hiding internal details', async () => {
    for (const userId of ['bad', 'down', 'boom']) {
      const inProcess = await outcome(local.getUserFeatures({ userId }));
      expect(inProcess).toEqual(await outcome(network.getUserFeatures({ userId })));
    }
    await expect(local.getUserFeatures({ userId: 'bad' })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'user_id: is bad',
      message: '3 INVALID_ARGUMENT: user_id: is bad',
    });
    await expect(local.getUserFeatures({ userId: 'boom' })).rejects.not.toMatchObject({ details: expect.stringContaining('secret') });
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED and tells the handler it was cancelled', async () => {
    cancelledCalls.length = 0;
    // The handler answers after 300 ms: the call ended at its deadline, not with that answer.
    await expect(local.getUserFeatures({ userId: 'slow' }, { timeoutMs: 50 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(cancelledCalls).toEqual(['slow']);
  });

  it('is cancelled by the caller with CANCELLED', async () => {
    const controller = new AbortController();
    const call = local.getUserFeatures({ userId: 'slow' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(call).rejects.toMatchObject({ code: status.CANCELLED });
  });

  it('propagates the request id and the caller deadline to in-process downstream calls', async () => {
    seenDownstream.length = 0;
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-inproc-1');
    const before = Date.now();
    await local.getUserFeatures({ userId: 'chain' }, { timeoutMs: 3000, metadata });
    expect(seenDownstream).toHaveLength(1);
    expect(seenDownstream[0]!.requestId).toBe('req-inproc-1');
    expect(seenDownstream[0]!.method).toBe('/recsys.features.v1.FeatureService/GetUserFeatures');
    // In-process the deadline is the caller's exactly (no relative timeout on the wire).
    expect(seenDownstream[0]!.deadlineMs).toBeGreaterThanOrEqual(before + 3000);
    expect(seenDownstream[0]!.deadlineMs).toBeLessThanOrEqual(Date.now() + 3000);
  });

  it('counts in-process calls in the service metrics like network ones', async () => {
    const method = '/recsys.features.v1.FeatureService/GetUserFeatures';
    const count = async (code: string) => {
      const text = await (await fetch(`http://127.0.0.1:${inner.metricsPort}/metrics`)).text();
      const match = new RegExp(`grpc_server_handled_total\\{method="${method}",code="${code}",service="inner"\\} (\\d+)`).exec(text);
      return Number(match?.[1] ?? 0);
    };
    const ok = await count('OK');
    const invalid = await count('INVALID_ARGUMENT');
    await downstream!.getUserFeatures({ userId: 'u1' });
    await downstream!.getUserFeatures({ userId: 'bad' }).catch(() => undefined);
    expect(await count('OK')).toBe(ok + 1);
    expect(await count('INVALID_ARGUMENT')).toBe(invalid + 1);
  });

  it('keeps grpc.health.v1 on the network side of a service on both', async () => {
    expect(await checkHealth(both.address)).toBe('SERVING');
  });

  it('answers UNAVAILABLE for an address no service in this process holds', async () => {
    const nobody = createServiceClient(features.FeatureService, 'inproc://nobody');
    await expect(nobody.getUserFeatures({ userId: 'u1' })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: 'no service at inproc://nobody in this process',
    });
    nobody.close();
  });

  it('drains in-flight calls on close, then refuses new ones with UNAVAILABLE and frees the name', async () => {
    const service = await startGrpcService({
      name: 'drain',
      module: TestModule,
      services: [features.FeatureService],
      config: configFor('in-process'),
      logger,
    });
    const client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 5000 });
    const inFlight = client.getUserFeatures({ userId: 'slow' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = service.close();
    await expect(client.getUserFeatures({ userId: 'late' })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await expect(inFlight).resolves.toMatchObject({ user: { userId: 'slow' } });
    await closed;
    expect(inProcessAddresses()).not.toContain('inproc://drain');
    await expect(client.getUserFeatures({ userId: 'after' })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    client.close();
    // The name can be taken again (a restarted stage).
    const again = await startGrpcService({
      name: 'drain',
      module: TestModule,
      services: [features.FeatureService],
      config: configFor('in-process'),
      logger,
    });
    await again.close();
  });
});
