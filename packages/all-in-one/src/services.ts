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

type Prepare = (env: NodeJS.ProcessEnv) => PreparedService;

/** A service from its configuration's loader and its start function; `reload`: what SIGHUP asks of it. */
function serviceOf<C extends { logLevel: LevelWithSilent }, R extends RunningGrpcService>(
  load: (env: NodeJS.ProcessEnv) => C,
  start: (config: C, logger: Logger) => Promise<R>,
  reload: (running: R) => void = () => undefined,
): Prepare {
  return (env) => {
    const config = load(env);
    return {
      logLevel: config.logLevel,
      start: async (logger) => {
        const running = await start(config, logger);
        return { running, reload: () => reload(running) };
      },
    };
  };
}

/**
 * Each service's configuration (ConfigError naming the first bad variable) and start: the same functions its own
 * process runs. Pre-ranking and ranking look for new model versions on SIGHUP, the gateway reads its API keys again.
 */
export const SERVICES: Record<AllInOneService, Prepare> = {
  features: serviceOf(loadFeaturesConfig, startFeatureService),
  retrieval: serviceOf(loadRetrievalConfig, startRetrievalService),
  preranking: serviceOf(loadPrerankingConfig, startPrerankingService, (running) => void running.checkModels()),
  ranking: serviceOf(loadRankingConfig, startRankingService, (running) => void running.checkModels()),
  reranking: serviceOf(loadRerankingConfig, startRerankingService),
  gateway: serviceOf(loadGatewayConfig, startGatewayService, (running) => running.reloadKeys()),
};
