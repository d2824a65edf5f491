import { ranking } from '@recsys/contracts';
import { createLogger, ServiceMetrics, startGrpcService, type Logger, type RunningGrpcService } from '@recsys/service-kit';
import { ModelWatcher } from '@recsys/serving';
import { FeatureServiceClient } from '@recsys/stage';
import type { RankingConfig } from './config.js';
import { DlrmModel } from './dlrm-model.js';
import { RankingMetrics } from './ranking-metrics.js';
import { RankingModule } from './ranking.module.js';
import { RankingService } from './ranking-service.js';

export interface RunningRankingService extends RunningGrpcService {
  readonly models: ModelWatcher<DlrmModel>;
  /** Looks for a new model version now; the process does this on SIGHUP. */
  checkModels(): Promise<void>;
}

export interface RankingServiceOptions {
  /** The item cache's clock in milliseconds (monotonic by default); tests move it instead of sleeping. */
  clock?: () => number;
}

/**
 * Starts the ranking stage: the newest loadable DLRM under MODELS_DIR (then each newer version as it is
 * published), the feature-service client, and the gRPC server, which reports SERVING only once a model is loaded.
 */
export async function startRankingService(
  config: RankingConfig,
  logger: Logger = createLogger('ranking', config.logLevel),
  options: RankingServiceOptions = {},
): Promise<RunningRankingService> {
  const serviceMetrics = new ServiceMetrics('ranking');
  const metrics = new RankingMetrics(serviceMetrics);
  const models = await ModelWatcher.start<DlrmModel>({
    root: config.modelsDir,
    name: 'dlrm',
    load: (version) =>
      DlrmModel.load(version, {
        providers: config.executionProviders,
        intraOpThreads: config.intraOpThreads,
        cudaDeviceId: config.cudaDeviceId,
        batcher: {
          batching: config.batching,
          maxBatchSize: config.maxBatchSize,
          maxQueueDelayMs: config.maxQueueDelayMs,
          maxQueueLength: config.maxQueueLength,
          observer: metrics,
        },
        itemCache: { ...config.itemCache, now: options.clock, observer: metrics },
        logger,
      }),
    release: (model) => model.release(),
    pollIntervalMs: config.modelPollIntervalMs,
    logger,
    onEvent: (event) => metrics.reload(event),
  });
  const lease = models.acquire();
  logger.info(
    {
      version: lease.version,
      provider: lease.model.provider,
      preferred: config.executionProviders,
      batching: config.batching,
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayMs: config.maxQueueDelayMs,
      itemCache: config.itemCache,
    },
    `dlrm v${lease.version} serves on ${lease.model.provider}`,
  );
  lease.release();
  const featureClient = FeatureServiceClient.connect(config.featuresAddress, config.featuresTimeoutMs);
  const release = async () => {
    featureClient.close();
    await models.close();
  };
  const running = await startGrpcService({
    name: 'ranking',
    module: RankingModule.register(new RankingService(models, featureClient, config, metrics)),
    services: [ranking.RankingService],
    config,
    logger,
    metrics: serviceMetrics,
    release: release,
  });
  const stop = running.close;
  let closing: Promise<void> | undefined;
  return Object.assign(running, {
    models,
    checkModels: () => models.check(),
    close: () =>
      (closing ??= (() => {
        // Queued requests run now rather than after their batch delay, so the drain does not wait for it.
        const lease = models.acquire();
        lease.model.batcher.drain();
        lease.release();
        return stop();
      })()),
  });
}
