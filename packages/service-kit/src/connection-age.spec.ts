import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { experimental, status, type ChannelOptions, type Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import { baseServiceConfig, baseServiceEnv, parseEnv, type BaseServiceConfig } from './config.js';
import { createServiceClient } from './grpc-client.js';
import { connectionAgeOptions, startGrpcService, type RunningGrpcService } from './grpc-service.js';
import { createLogger } from './logger.js';

const logger = createLogger('test', 'silent');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function configWith(env: Record<string, string>): BaseServiceConfig {
  return baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0', ...env }));
}

/** A service that answers with its own name and records the peer (client address and port) of each call. */
function answeringAs(name: string, peers: string[] = []) {
  @Controller()
  class NamedController {
    @GrpcMethod('FeatureService', 'GetUserFeatures')
    async get(request: features.GetUserFeaturesRequest, _metadata: Metadata, call: ServerUnaryCall<unknown, unknown>) {
      peers.push(call.getPeer());
      if (request.userId === 'slow') await sleep(400);
      return { found: true, user: { userId: name } };
    }
  }
  @Module({ controllers: [NamedController] })
  class NamedModule {}
  return NamedModule;
}

function start(name: string, config: BaseServiceConfig, peers?: string[]): Promise<RunningGrpcService> {
  return startGrpcService({ name, module: answeringAs(name, peers), services: [features.FeatureService], config, logger });
}

/**
 * A test double of the DNS resolver, for the scheme `scaled:///<name>`: it answers with the addresses the test
 * sets, and only when the channel asks for a resolution, as grpc-js's DNS resolver does (a headless Service's
 * name answers with the replicas that exist when it is looked up), and like it at most once per minimum interval
 * (`grpc.dns_min_time_between_resolutions_ms`, here 100 ms): a channel whose addresses all fail asks again at once,
 * and answering every ask would spin. It counts the resolutions made.
 */
const scaled = { addresses: new Map<string, string[]>(), resolutions: new Map<string, number>() };
const MIN_MS_BETWEEN_RESOLUTIONS = 100;
class ScaledResolverDouble implements experimental.Resolver {
  private readonly name: string;
  private last = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    target: { path: string },
    private readonly listener: experimental.ResolverListener,
    _options: ChannelOptions,
  ) {
    this.name = target.path;
  }
  updateResolution(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.last + MIN_MS_BETWEEN_RESOLUTIONS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.last = Date.now();
      scaled.resolutions.set(this.name, (scaled.resolutions.get(this.name) ?? 0) + 1);
      const endpoints = (scaled.addresses.get(this.name) ?? []).map((address) => {
        const [host, port] = address.split(':');
        return { addresses: [{ host: host!, port: Number(port) }] };
      });
      this.listener({ ok: true, value: endpoints }, {}, null, '');
    }, wait);
  }
  destroy(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
  static getDefaultAuthority(target: { path: string }): string {
    return target.path;
  }
}
experimental.registerResolver('scaled', ScaledResolverDouble as unknown as Parameters<typeof experimental.registerResolver>[1]);

/** Calls every 25 ms until `until` holds for the answers so far or `ms` pass; returns who answered, in order. */
async function callRepeatedly(address: string, ms: number, until: (answers: string[]) => boolean = () => false): Promise<string[]> {
  const client = createServiceClient(features.FeatureService, address, { defaultTimeoutMs: 2000 });
  const answers: string[] = [];
  try {
    const end = Date.now() + ms;
    while (Date.now() < end && !until(answers)) {
      answers.push((await client.getUserFeatures({ userId: 'u' })).user!.userId);
      await sleep(25);
    }
  } finally {
    client.close();
  }
  return answers;
}

describe('GRPC_MAX_CONNECTION_AGE_MS', () => {
  it('is off by default and sets the server options (grace = the shutdown timeout) when given', () => {
    expect(connectionAgeOptions(configWith({}))).toEqual({});
    expect(connectionAgeOptions(configWith({ GRPC_MAX_CONNECTION_AGE_MS: '30000', SHUTDOWN_TIMEOUT_MS: '8000' }))).toEqual({
      'grpc.max_connection_age_ms': 30000,
      'grpc.max_connection_age_grace_ms': 8000,
    });
    expect(() => configWith({ GRPC_MAX_CONNECTION_AGE_MS: '-1' })).toThrow('invalid configuration: GRPC_MAX_CONNECTION_AGE_MS');
  });

  it('closes aged connections: a dns:/// client reconnects and no call fails', async () => {
    const peers: string[] = [];
    const server = await start('aged', configWith({ GRPC_MAX_CONNECTION_AGE_MS: '300' }), peers);
    try {
      const answers = await callRepeatedly(`dns:///localhost:${server.grpcPort}`, 1500);
      expect(answers.length).toBeGreaterThan(10);
      expect(new Set(answers)).toEqual(new Set(['aged']));
      // Each connection has its own client port: more than one means the server closed the first and the client reconnected.
      expect(new Set(peers).size).toBeGreaterThanOrEqual(2);
    } finally {
      await server.close();
    }
  });

  it('makes a client re-resolve its name, so a replica added after it connected gets calls', async () => {
    const first = await start('first', configWith({ GRPC_MAX_CONNECTION_AGE_MS: '300' }));
    const added = await start('added', configWith({ GRPC_MAX_CONNECTION_AGE_MS: '300' }));
    try {
      scaled.addresses.set('stage', [first.address]);
      const client = createServiceClient(features.FeatureService, 'scaled:///stage', {
        defaultTimeoutMs: 2000,
      });
      try {
        expect((await client.getUserFeatures({ userId: 'u' })).user!.userId).toBe('first');
        // Scale-up: the name now answers with both replicas, but only for resolutions from here on.
        scaled.addresses.set('stage', [first.address, added.address]);
        const answers: string[] = [];
        const end = Date.now() + 5000;
        while (Date.now() < end && !answers.includes('added')) {
          answers.push((await client.getUserFeatures({ userId: 'u' })).user!.userId);
          await sleep(25);
        }
        expect(answers).toContain('added');
        expect(scaled.resolutions.get('stage')).toBeGreaterThanOrEqual(2);
        // Once both are resolved, the client's default round robin spreads the calls over them.
        const spread = await Promise.all(Array.from({ length: 8 }, () => client.getUserFeatures({ userId: 'u' })));
        expect(new Set(spread.map((r) => r.user!.userId))).toEqual(new Set(['first', 'added']));
      } finally {
        client.close();
      }
    } finally {
      await first.close();
      await added.close();
    }
  });

  it('without it, a long-lived connection never looks again and the added replica stays idle (the control)', async () => {
    const first = await start('first', configWith({}));
    const added = await start('added', configWith({}));
    try {
      scaled.addresses.set('control', [first.address]);
      const client = createServiceClient(features.FeatureService, 'scaled:///control', {
        defaultTimeoutMs: 2000,
      });
      try {
        await client.getUserFeatures({ userId: 'u' });
        scaled.addresses.set('control', [first.address, added.address]);
        const answers: string[] = [];
        const end = Date.now() + 1200;
        while (Date.now() < end) {
          answers.push((await client.getUserFeatures({ userId: 'u' })).user!.userId);
          await sleep(25);
        }
        expect(new Set(answers)).toEqual(new Set(['first']));
        expect(scaled.resolutions.get('control')).toBe(1);
      } finally {
        client.close();
      }
    } finally {
      await first.close();
      await added.close();
    }
  });
});

describe('grpc_server_in_flight_requests', () => {
  it('counts calls being handled, back to 0 when they end (answered or cancelled by the caller)', async () => {
    const server = await start('inflight', configWith({ METRICS_PORT: '0' }));
    const gauge = async () => {
      const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
      const match = /^grpc_server_in_flight_requests\{service="inflight"\} (\d+)$/m.exec(text);
      if (!match) throw new Error(`no in-flight gauge in:\n${text}`);
      return Number(match[1]);
    };
    const client = createServiceClient(features.FeatureService, server.address, { defaultTimeoutMs: 5000 });
    try {
      expect(await gauge()).toBe(0);
      const slow = [client.getUserFeatures({ userId: 'slow' }), client.getUserFeatures({ userId: 'slow' })];
      const cancelled = client.getUserFeatures({ userId: 'slow' }, { timeoutMs: 300 });
      // The handlers sleep 400 ms: all three are in flight as soon as they have arrived.
      for (let i = 0; i < 20 && (await gauge()) < 3; i++) await sleep(10);
      expect(await gauge()).toBe(3);
      await expect(cancelled).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
      await Promise.all(slow);
      for (let i = 0; i < 40 && (await gauge()) !== 0; i++) await sleep(25);
      expect(await gauge()).toBe(0);
    } finally {
      client.close();
      await server.close();
    }
  });
});
