import { Metadata, status } from '@grpc/grpc-js';
import { createLogger, grpcStatusOf, ServiceMetrics } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';
import { AccessControl, accessCounters } from './access-control.js';
import { ApiKeyStore } from './api-keys.js';
import { GrpcAccess } from './grpc-access.js';
import { RateLimiter } from './rate-limiter.js';

const KEY = 'grpc-test-key-0123456789';
const access: AccessConfig = {
  authDisabled: false,
  apiKeys: `svc:${KEY}`,
  apiKeysFile: undefined,
  apiKeysReloadMs: 0,
  rateLimitPerSecond: 1,
  rateLimitBurst: 2,
  corsOrigins: [],
  maxBodyBytes: 1024,
};

function metadata(entries: Record<string, string>): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
}

async function statusOf(fn: () => Promise<unknown>): Promise<{ code: status; message: string }> {
  try {
    await fn();
  } catch (error) {
    return { code: grpcStatusOf(error), message: (error as Error).message };
  }
  throw new Error('expected an error');
}

describe('GrpcAccess', () => {
  const logger = createLogger('gateway-test', 'silent');

  it('admits a valid key from either header, with the caller request id', async () => {
    const grpc = GrpcAccess.fromConfig({ ...access, rateLimitPerSecond: 0 }, new ServiceMetrics('gateway'), logger);
    expect(await grpc.admit(metadata({ authorization: `Bearer ${KEY}`, 'x-request-id': 'req-1' }), '/m')).toEqual({
      requestId: 'req-1',
      keyName: 'svc',
    });
    const caller = await grpc.admit(metadata({ 'x-api-key': KEY, 'x-request-id': 'bad id with spaces' }), '/m');
    expect(caller.keyName).toBe('svc');
    expect(caller.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers UNAUTHENTICATED without a key or with a wrong one, and counts it', async () => {
    const metrics = new ServiceMetrics('gateway');
    const grpc = GrpcAccess.fromConfig(access, metrics, logger);
    expect((await statusOf(() => grpc.admit(new Metadata(), '/m'))).code).toBe(status.UNAUTHENTICATED);
    expect((await statusOf(() => grpc.admit(metadata({ 'x-api-key': KEY.replace(/.$/, '!') }), '/m'))).code).toBe(status.UNAUTHENTICATED);
    const failures = await metrics.registry.getSingleMetricAsString('gateway_auth_failures_total');
    expect(failures).toMatch(/gateway_auth_failures_total\{service="gateway"\} 2/);
  });

  it('answers RESOURCE_EXHAUSTED with the retry-after seconds once the burst is spent', async () => {
    const metrics = new ServiceMetrics('gateway');
    let now = 0;
    const control = AccessControl.fromConfig(access, metrics, logger, () => now);
    const grpc = new GrpcAccess(control);
    const md = metadata({ 'x-api-key': KEY });
    await grpc.admit(md, '/m');
    await grpc.admit(md, '/m');
    const refused = await statusOf(() => grpc.admit(md, '/m'));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.message).toContain('retry after 1s');
    now += 1000;
    expect((await grpc.admit(md, '/m')).keyName).toBe('svc');
    expect(await metrics.registry.getSingleMetricAsString('gateway_rate_limited_total')).toContain(
      'gateway_rate_limited_total{key="svc",service="gateway"} 1',
    );
  });

  it('shares counters when two access controls use one registry', async () => {
    const metrics = new ServiceMetrics('gateway');
    const keys = ApiKeyStore.fromConfig(access);
    const first = new AccessControl(keys, new RateLimiter({ perSecond: 1, burst: 1 }), metrics, logger);
    const second = new AccessControl(keys, new RateLimiter({ perSecond: 1, burst: 1 }), metrics, logger);
    await expect(first.admit('wrong', '/m')).rejects.toThrow();
    await expect(second.admit(undefined, '/m')).rejects.toThrow();
    expect(accessCounters(metrics).authFailures).toBe(accessCounters(metrics).authFailures);
    expect(await metrics.registry.getSingleMetricAsString('gateway_auth_failures_total')).toMatch(/\} 2$/m);
  });
});
