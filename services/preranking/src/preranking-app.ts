import { preranking } from '@recsys/contracts';
import { createLogger, ServiceMetrics, startGrpcService, type Logger, type RunningGrpcService } from '@recsys/service-kit';
import { ModelWatcher } from '@recsys/serving';
import { FeatureServiceClient } from '@recsys/stage';
import type { PrerankingConfig } from './config.js';
import { PrerankerModel } from './preranker-model.js';
import { PrerankingMetrics } from './preranking-metrics.js';
import { PrerankingModule } from './preranking.module.js';
import { PrerankingService } from './preranking-service.js';

export interface RunningPrerankingService extends RunningGrpcService {
  readonly models: ModelWatcher<PrerankerModel>;
  /** Looks for a new model version now; the process does this on SIGHUP. */
  checkModels(): Promise<void>;
}

export interface PrerankingServiceOptions {
  /** The item cache's clock in milliseconds (monotonic by default); tests move it instead of sleeping. */
  clock?: () => number;
}

/**
 * Starts the pre-ranking stage: the newest loadable pre-ranker under MODELS_DIR with the two-tower version
 * it depends on (then each newer pre-ranker as it is published), the feature-service client, and the gRPC
 * server, which reports SERVING only once a model is loaded.
 */
export async function startPrerankingService(
  config: PrerankingConfig,
  logger: Logger = createLogger('preranking', config.logLevel),
  options: PrerankingServiceOptions = {},
): Promise<RunningPrerankingService> {
  const serviceMetrics = new ServiceMetrics('preranking');
  const metrics = new PrerankingMetrics(serviceMetrics);
  const models = await ModelWatcher.start<PrerankerModel>({
    root: config.modelsDir,
    name: 'preranker',
    load: (version) =>
      PrerankerModel.load(version, {
        modelsDir: config.modelsDir,
        providers: config.executionProviders,
        intraOpThreads: config.intraOpThreads,
        cudaDeviceId: config.cudaDeviceId,
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
      twoTower: lease.model.twoTowerVersion,
      provider: lease.model.provider,
      preferred: config.executionProviders,
      itemCache: config.itemCache,
    },
    `preranker v${lease.version} (two-tower v${lease.model.twoTowerVersion}) serves on ${lease.model.provider}`,
  );
  lease.release();
  const featureClient = FeatureServiceClient.connect(config.featuresAddress, config.featuresTimeoutMs);
  const release = async () => {
    featureClient.close();
    await models.close();
  };
  const running = await startGrpcService({
    name: 'preranking',
    module: PrerankingModule.register(new PrerankingService(models, featureClient, config, logger, metrics)),
    services: [preranking.PrerankingService],
    config,
    logger,
    metrics: serviceMetrics,
    release: release,
  });
  return Object.assign(running, { models, checkModels: () => models.check() });
}
