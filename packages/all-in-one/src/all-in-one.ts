import type { Server } from 'node:http';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { loadGatewayConfig, startGatewayService, type RunningGateway } from '@recsys/gateway';
import { loadPrerankingConfig, startPrerankingService, type RunningPrerankingService } from '@recsys/preranking';
import { loadRankingConfig, startRankingService, type RunningRankingService } from '@recsys/ranking';
import { loadRerankingConfig, startRerankingService } from '@recsys/reranking';
import { loadRetrievalConfig, startRetrievalService } from '@recsys/retrieval';
import {
  baseServiceConfig,
  baseServiceEnv,
  createLogger,
  inProcessAddress,
  parseEnv,
  startMetricsServer,
  type RunningGrpcService,
} from '@recsys/service-kit';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { z } from 'zod';

/** The stages after the feature service, in the order they start (each only calls the ones started before it). */
export const ALL_IN_ONE_SERVICES = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'] as const;
export type AllInOneService = (typeof ALL_IN_ONE_SERVICES)[number];

/** Variables of the all-in-one process itself; every service reads the rest of the environment as it would alone. */
const allInOneEnv = {
  ...baseServiceEnv,
  /**
   * The feature service's own gRPC port, for the offline tools (loading features, building an index); unset: it takes
   * calls in-process only.
   */
  FEATURES_GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
};

export interface AllInOneConfig {
  /** The one metrics endpoint (every service's registry, labelled by service); -1 off. */
  metricsHost: string;
  metricsPort: number;
  logLevel: ReturnType<typeof baseServiceConfig>['logLevel'];
  featuresGrpcPort: number | undefined;
}

export function loadAllInOneConfig(env: NodeJS.ProcessEnv = process.env): AllInOneConfig {
  const e = parseEnv(allInOneEnv, env);
  const base = baseServiceConfig(e);
  return { metricsHost: base.metricsHost, metricsPort: base.metricsPort, logLevel: base.logLevel, featuresGrpcPort: e.FEATURES_GRPC_PORT };
}

/**
 * Each service's environment in the all-in-one process: the process's own, with the wiring the mode decides. Stages take
 * calls in-process only; the gateway listens on its ports (GRPC_PORT, HTTP_PORT) and in-process; the feature service on
 * FEATURES_GRPC_PORT too when it is set. Per-service metrics endpoints are off: the process serves one for all.
 */
export function serviceEnvOf(name: AllInOneService, env: NodeJS.ProcessEnv, config: AllInOneConfig): NodeJS.ProcessEnv {
  const wired: NodeJS.ProcessEnv = { ...env, METRICS_PORT: '-1', FEATURES_ADDRESS: inProcessAddress('features') };
  switch (name) {
    case 'features':
      if (config.featuresGrpcPort === undefined) return { ...wired, GRPC_LISTEN: 'in-process' };
      return { ...wired, GRPC_LISTEN: 'both', GRPC_PORT: String(config.featuresGrpcPort) };
    case 'gateway':
      return {
        ...wired,
        GRPC_LISTEN: 'both',
        RETRIEVAL_ADDRESS: inProcessAddress('retrieval'),
        PRERANKING_ADDRESS: inProcessAddress('preranking'),
        RANKING_ADDRESS: inProcessAddress('ranking'),
        RERANKING_ADDRESS: inProcessAddress('reranking'),
      };
    default:
      return { ...wired, GRPC_LISTEN: 'in-process' };
  }
}

export interface AllInOne {
  /** The services started so far, by name. */
  readonly services: Partial<Record<AllInOneService, RunningGrpcService>>;
  /** The combined metrics endpoint's port; -1 when off. */
  readonly metricsPort: number;
  /** Starts the stages and the gateway (once; startAllInOne does it unless told to wait). */
  startStages(): Promise<void>;
  /** Pre-ranking and ranking look for new model versions; the gateway reads its API keys again. */
  reload(): void;
  /** Stops the gateway first and the feature service last, each draining its in-flight calls. */
  close(): Promise<void>;
}

/**
 * Every service of the pipeline in this process: the feature service first, then (now, or when startStages is called,
 * once the feature data and the index are in place) retrieval, pre-ranking, ranking and re-ranking, then the gateway.
 * Each is the same start function its own process runs, configured from the same variables.
 */
export async function startAllInOne(env: NodeJS.ProcessEnv = process.env, options: { deferStages?: boolean } = {}): Promise<AllInOne> {
  const config = loadAllInOneConfig(env);
  // Every configuration is read before anything starts, so a bad variable fails at once with its name.
  const configs = {
    features: loadFeaturesConfig(serviceEnvOf('features', env, config)),
    retrieval: loadRetrievalConfig(serviceEnvOf('retrieval', env, config)),
    preranking: loadPrerankingConfig(serviceEnvOf('preranking', env, config)),
    ranking: loadRankingConfig(serviceEnvOf('ranking', env, config)),
    reranking: loadRerankingConfig(serviceEnvOf('reranking', env, config)),
    gateway: loadGatewayConfig(serviceEnvOf('gateway', env, config)),
  };
  const logger = (name: AllInOneService) => createLogger(name, configs[name].logLevel);
  const services: Partial<Record<AllInOneService, RunningGrpcService>> = {};
  let metricsServer: Server | undefined;
  let metricsPort = -1;

  const close = async () => {
    for (const name of [...ALL_IN_ONE_SERVICES].reverse()) {
      const service = services[name];
      delete services[name];
      await service?.close();
    }
    await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
  };
  const failWith = async (error: unknown): Promise<never> => {
    await close().catch(() => undefined);
    throw error;
  };

  services.features = await startFeatureService(configs.features, logger('features')).catch(failWith);
  if (config.metricsPort >= 0) {
    const registries = () => Object.values(services).map((service) => service.metrics.registry);
    const started = await startMetricsServer(combinedRegistry(registries), config.metricsPort, config.metricsHost).catch(failWith);
    metricsServer = started.server;
    metricsPort = started.port;
  }

  let stages: Promise<void> | undefined;
  const startStages = () =>
    (stages ??= (async () => {
      await Promise.all([
        startRetrievalService(configs.retrieval, logger('retrieval')).then((s) => (services.retrieval = s)),
        startPrerankingService(configs.preranking, logger('preranking')).then((s) => (services.preranking = s)),
        startRankingService(configs.ranking, logger('ranking')).then((s) => (services.ranking = s)),
        startRerankingService(configs.reranking, logger('reranking')).then((s) => (services.reranking = s)),
      ]).catch(failWith);
      services.gateway = await startGatewayService(configs.gateway, logger('gateway')).catch(failWith);
    })());
  if (!options.deferStages) await startStages();

  return {
    services,
    metricsPort,
    startStages,
    reload: () => {
      void (services.preranking as RunningPrerankingService | undefined)?.checkModels();
      void (services.ranking as RunningRankingService | undefined)?.checkModels();
      (services.gateway as RunningGateway | undefined)?.reloadKeys();
    },
    close,
  };
}

/**
 * One registry view over the services' own ones (each labels its series with its service name): what a scrape of the
 * separate processes would have found, in one answer.
 */
function combinedRegistry(registries: () => Registry[]): Registry {
  const view = {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    metrics: async () => {
      const metrics = await Promise.all(registries().map((registry) => registry.getMetricsAsJSON()));
      return AggregatorRegistry.aggregate(metrics).metrics();
    },
  };
  return view as unknown as Registry;
}
