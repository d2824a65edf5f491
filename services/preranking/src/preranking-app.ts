import { preranking } from '@recsys/contracts';
import { createLogger, ServiceMetrics, type Logger } from '@recsys/service-kit';
import { type RunningModelStage, startModelStage } from '@recsys/stage';
import type { PrerankingConfig } from './config.js';
import { PrerankerModel } from './preranker-model.js';
import { PrerankingMetrics } from './preranking-metrics.js';
import { PrerankingModule } from './preranking.module.js';
import { PrerankingService } from './preranking-service.js';

export type RunningPrerankingService = RunningModelStage<PrerankerModel>;

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
  return startModelStage<PrerankerModel>({
    name: 'preranking',
    model: 'preranker',
    config,
    logger,
    metrics: serviceMetrics,
    load: (version, features) =>
      PrerankerModel.load(version, {
        modelsDir: config.modelsDir,
        providers: config.executionProviders,
        intraOpThreads: config.intraOpThreads,
        cudaDeviceId: config.cudaDeviceId,
        thread: config.sessionThread,
        itemCache: { ...config.itemCache, now: options.clock, observer: metrics },
        itemTable: { ...config.itemTable, scanner: features, observer: metrics },
        logger,
      }),
    onReload: (event) => metrics.reload(event),
    describe: (version, model) => [
      {
        twoTower: model.twoTowerVersion,
        itemCache: config.itemCache,
        itemTable: { ...config.itemTable, items: model.items?.table?.size ?? 0 },
      },
      `preranker v${version} (two-tower v${model.twoTowerVersion}) serves on ${model.provider}`,
    ],
    serve: (models, features) => {
      const service = new PrerankingService(models, features, config, logger, metrics);
      return {
        module: PrerankingModule.register(service),
        services: [preranking.PrerankingService],
        // Prerank, the service's one method, is hot: bytes in and out, on grpc-js directly.
        methods: [{ service: preranking.PrerankingService, method: 'prerank', handle: (request) => service.prerank(request) }],
      };
    },
  });
}
