import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { loadGatewayConfig, startGatewayService } from '@recsys/gateway';
import { loadPrerankingConfig, startPrerankingService } from '@recsys/preranking';
import { loadRankingConfig, startRankingService } from '@recsys/ranking';
import { loadRerankingConfig, startRerankingService } from '@recsys/reranking';
import { loadRetrievalConfig, startRetrievalService } from '@recsys/retrieval';
import type { LevelWithSilent, Logger, RunningGrpcService } from '@recsys/service-kit';

/** The services of the all-in-one process, in the order they start (each only calls the ones started before it). */
export const ALL_IN_ONE_SERVICES = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'] as const;
export type AllInOneService = (typeof ALL_IN_ONE_SERVICES)[number];

/** The stages that may run on a worker thread of their own (STAGE_THREADS); the gateway and the feature service stay on the main one. */
export const THREAD_STAGES = ['retrieval', 'preranking', 'ranking', 'reranking'] as const;
export type ThreadStage = (typeof THREAD_STAGES)[number];

/** A started service, with what the process asks of it besides closing: look for new models or keys again (SIGHUP). */
export interface HostedService {
  readonly running: RunningGrpcService;
  reload(): void;
}

/** A service's configuration, read from its environment, and how to start it with that configuration. */
export interface PreparedService {
  readonly logLevel: LevelWithSilent;
  start(logger: Logger): Promise<HostedService>;
}

/**
 * Each service's configuration (ConfigError naming the first bad variable) and start: the same functions its own
 * process runs.
 */
export const SERVICES: Record<AllInOneService, (env: NodeJS.ProcessEnv) => PreparedService> = {
  features: (env) => {
    const config = loadFeaturesConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => ({ running: await startFeatureService(config, logger), reload: noReload }),
    };
  },
  retrieval: (env) => {
    const config = loadRetrievalConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => ({ running: await startRetrievalService(config, logger), reload: noReload }),
    };
  },
  preranking: (env) => {
    const config = loadPrerankingConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => {
        const running = await startPrerankingService(config, logger);
        return { running, reload: () => void running.checkModels() };
      },
    };
  },
  ranking: (env) => {
    const config = loadRankingConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => {
        const running = await startRankingService(config, logger);
        return { running, reload: () => void running.checkModels() };
      },
    };
  },
  reranking: (env) => {
    const config = loadRerankingConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => ({ running: await startRerankingService(config, logger), reload: noReload }),
    };
  },
  gateway: (env) => {
    const config = loadGatewayConfig(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => {
        const running = await startGatewayService(config, logger);
        return { running, reload: () => running.reloadKeys() };
      },
    };
  },
};

const noReload = () => undefined;
