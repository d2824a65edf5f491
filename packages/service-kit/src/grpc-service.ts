import 'reflect-metadata';
import type { DescService } from '@bufbuild/protobuf';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { DynamicModule, INestMicroservice, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ServerGrpc, Transport, type GrpcOptions, type MicroserviceOptions } from '@nestjs/microservices';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Server as HttpServer } from 'node:http';
import type { BaseServiceConfig } from './config.js';
import { freePort } from './free-port.js';
import { CHANNEL_OPTIONS, packageDefinition, protoPackageOf } from './grpc-definition.js';
import { InProcessServer, inProcessAddress } from './in-process.js';
import { NestPinoLogger, type Logger } from './logger.js';
import { ServiceMetrics, startMetricsServer } from './metrics.js';
import { GrpcExceptionFilter, GrpcObservabilityInterceptor } from './observability.js';
import { startTracing, type Tracing } from './tracing.js';
import { answerBytes, keepRequestBytes, methodPath, unaryBytesHandler, type UnaryBytesMethod } from './unary-method.js';

export interface GrpcServiceSpec {
  /** Short name for logs and metrics ("features"). */
  name: string;
  /** The Nest module with the gRPC controllers. */
  module: Type<unknown> | DynamicModule;
  /** The services the controllers implement; each is also reported by grpc.health.v1. */
  services: readonly DescService[];
  config: BaseServiceConfig;
  logger: Logger;
  /** The registry the service exports; pass one to register the stage's own metrics before start. */
  metrics?: ServiceMetrics;
  /**
   * Hot unary methods served on grpc-js directly, request and answer as bytes, with a thin wrapper instead of Nest's
   * per-call path (UnaryBytesMethod); the service's controllers serve the other methods.
   */
  methods?: readonly UnaryBytesMethod[];
  /**
   * Largest request message accepted (RESOURCE_EXHAUSTED above it); default CHANNEL_OPTIONS' 64 MiB, which internal
   * batch calls need. A public front door sets its own request size limit, or each call may make it buffer 64 MiB.
   */
  maxReceiveMessageBytes?: number;
  /**
   * Releases what the service holds (stores, model sessions, clients): after the server has drained its
   * in-flight calls on close, or at once when the service fails to start.
   */
  release?: () => Promise<void> | void;
}

/** A started service: where it listens, its health, and a shutdown that drains in-flight calls. */
export interface RunningGrpcService {
  readonly app: INestMicroservice;
  /** -1 when the service takes calls in-process only. */
  readonly grpcPort: number;
  /** host:port, or inproc://<name> when the service takes calls in-process only. */
  readonly address: string;
  /** inproc://<name> when callers in this process reach it without the network (GRPC_LISTEN in-process or both). */
  readonly inProcessAddress: string | undefined;
  /** -1 when the metrics endpoint is disabled. */
  readonly metricsPort: number;
  readonly metrics: ServiceMetrics;
  setServing(serving: boolean): void;
  close(): Promise<void>;
}

/** After the calls were cancelled, how long the close still waits for the gRPC listener before going on. */
const FORCED_CLOSE_GRACE_MS = 200;

export async function startGrpcService(spec: GrpcServiceSpec): Promise<RunningGrpcService> {
  const { config, logger } = spec;
  const listen = config.grpcListen ?? 'network';
  const network = listen !== 'in-process';
  const inProcess = listen === 'network' ? undefined : inProcessAddress(spec.name);
  const grpcPort = !network ? -1 : config.grpcPort === 0 ? await freePort(config.grpcHost) : config.grpcPort;
  const metrics = spec.metrics ?? new ServiceMetrics(spec.name);
  const names = spec.services.map((s) => s.typeName);
  const health = new HealthImplementation(Object.fromEntries(['', ...names].map((n) => [n, 'SERVING' as ServingStatus])));
  let grpcServer: GrpcServer | undefined;

  const direct = spec.methods ?? [];
  const directPaths = new Set(direct.map((m) => methodPath(m.service, m.method)));
  const definition = packageDefinition(spec.services, directPaths);
  const options: GrpcOptions['options'] = {
    url: `${config.grpcHost}:${grpcPort}`,
    package: [...new Set(spec.services.filter((s) => definition[s.typeName] !== undefined).map(protoPackageOf))],
    packageDefinition: definition,
    gracefulShutdown: true,
    channelOptions: {
      ...CHANNEL_OPTIONS,
      ...connectionAgeOptions(config),
      ...(spec.maxReceiveMessageBytes !== undefined ? { 'grpc.max_receive_message_length': spec.maxReceiveMessageBytes } : {}),
    },
    onLoadPackageDefinition: (_definition: unknown, server: GrpcServer) => {
      grpcServer = server;
      health.addToServer(server);
      for (const method of direct) {
        const path = methodPath(method.service, method.method);
        const handler = unaryBytesHandler(method, metrics, logger);
        if (!server.register(path, handler as never, answerBytes as never, keepRequestBytes, 'unary')) {
          throw new Error(`${path} is served twice`);
        }
      }
    },
  };
  let app: INestMicroservice | undefined;
  let metricsServer: HttpServer | undefined;
  let metricsPort = -1;
  let tracing: Tracing | undefined;
  try {
    // OTEL_* variables: off unless OTEL_TRACES_EXPORTER=otlp; a bad value fails the start naming the variable.
    tracing = startTracing({ serviceName: spec.name, logger });
    app = await NestFactory.createMicroservice<MicroserviceOptions>(spec.module, {
      ...(inProcess === undefined
        ? { transport: Transport.GRPC, options }
        : { strategy: new InProcessGrpcTransport(options, inProcess, network) }),
      logger: new NestPinoLogger(logger.child({ component: 'nest' })),
      bufferLogs: false,
    });
    app.useGlobalInterceptors(new GrpcObservabilityInterceptor(metrics, logger));
    app.useGlobalFilters(new GrpcExceptionFilter());
    await app.listen();
    if (config.metricsPort >= 0) {
      const started = await startMetricsServer(metrics.registry, config.metricsPort, config.metricsHost);
      metricsServer = started.server;
      metricsPort = started.port;
    }
  } catch (error) {
    await app?.close().catch(() => undefined);
    await spec.release?.();
    await tracing?.release();
    throw error;
  }
  const started = app;
  logger.info(
    { grpcPort, inProcess, metricsPort, services: names, ...(tracing ? { tracing: tracing.serviceName } : {}) },
    `${spec.name} service listening`,
  );

  const setServing = (serving: boolean) => {
    for (const n of ['', ...names]) health.setStatus(n, serving ? 'SERVING' : 'NOT_SERVING');
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      setServing(false);
      // In-flight calls finish (tryShutdown) unless they outlast the shutdown timeout. Then every call is cancelled;
      // the listener itself may still wait for a connection that never became an HTTP/2 session (a silent TCP
      // connection: a TCP probe, a client that connected while the server was starting), which would hold the
      // process until SIGKILL, so the close stops waiting for it shortly after.
      let forced: () => void = () => undefined;
      const cancelled = new Promise<void>((resolve) => (forced = resolve));
      const timer = setTimeout(() => {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight calls outlasted the shutdown timeout; cancelling them');
        grpcServer?.forceShutdown();
        setTimeout(forced, FORCED_CLOSE_GRACE_MS);
      }, config.shutdownTimeoutMs);
      try {
        await Promise.race([started.close(), cancelled]);
      } finally {
        clearTimeout(timer);
        await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
        await spec.release?.();
        // The spans of the last calls are sent before the process ends.
        await tracing?.release().catch((error: unknown) => logger.warn({ err: error }, 'tracing: the last spans were not exported'));
      }
      logger.info(`${spec.name} service stopped`);
    })());

  const address = network ? `${config.grpcHost}:${grpcPort}` : inProcess!;
  return { app: started, grpcPort, address, inProcessAddress: inProcess, metricsPort, metrics, setServing, close };
}

/**
 * Nest's gRPC transport with the grpc-js Server replaced by the in-process one (which also forwards to a network server
 * when the service listens on a port too): the same controllers, interceptor and exception filter serve both.
 */
class InProcessGrpcTransport extends ServerGrpc {
  constructor(
    options: GrpcOptions['options'],
    private readonly inProcess: string,
    private readonly network: boolean,
  ) {
    super(options);
  }

  override async createClient(): Promise<GrpcServer> {
    const server = this.network ? await super.createClient() : undefined;
    return new InProcessServer(this.inProcess, server) as unknown as GrpcServer;
  }
}

/**
 * The server options that close connections after GRPC_MAX_CONNECTION_AGE_MS (none when it is 0); an aged
 * connection's calls in flight get as long to finish as they would at shutdown.
 */
export function connectionAgeOptions(config: Pick<BaseServiceConfig, 'maxConnectionAgeMs' | 'shutdownTimeoutMs'>): Record<string, number> {
  if (config.maxConnectionAgeMs <= 0) return {};
  return { 'grpc.max_connection_age_ms': config.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': config.shutdownTimeoutMs };
}

/**
 * SIGTERM or SIGINT drains and stops the service (a started one, or whatever `close` stops when the signal comes), then
 * ends the process: 0 when the close succeeded, 1 when it failed. A second signal while closing changes nothing.
 */
export function exitOnSignals(service: Pick<RunningGrpcService, 'close'> | (() => Promise<void>), logger: Logger): void {
  const close = typeof service === 'function' ? service : () => service.close();
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
