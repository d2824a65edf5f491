import { ranking } from '@recsys/contracts';
import { createLogger, ServiceMetrics, type Logger } from '@recsys/service-kit';
import { type RunningModelStage, startModelStage } from '@recsys/stage';
import type { RankingConfig } from './config.js';
import { DlrmModel } from './dlrm-model.js';
import { RankingMetrics } from './ranking-metrics.js';
import { RankingModule } from './ranking.module.js';
import { RankingService } from './ranking-service.js';

export type RunningRankingService = RunningModelStage<DlrmModel>;

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
  const running = await startModelStage<DlrmModel>({
    name: 'ranking',
    model: 'dlrm',
    config,
    logger,
    metrics: serviceMetrics,
    load: (version, features) =>
      DlrmModel.load(version, {
        providers: config.executionProviders,
        intraOpThreads: config.intraOpThreads,
        cudaDeviceId: config.cudaDeviceId,
        thread: config.sessionThread,
        batcher: {
          batching: config.batching,
          maxBatchSize: config.maxBatchSize,
          maxQueueDelayMs: config.maxQueueDelayMs,
          maxQueueLength: config.maxQueueLength,
          observer: metrics,
        },
        itemCache: { ...config.itemCache, now: options.clock, observer: metrics },
        itemTable: { ...config.itemTable, scanner: features, observer: metrics },
        logger,
      }),
    onReload: (event) => metrics.reload(event),
    describe: (version, model) => [
      {
        batching: config.batching,
        maxBatchSize: config.maxBatchSize,
        maxQueueDelayMs: config.maxQueueDelayMs,
        itemCache: config.itemCache,
        itemTable: { ...config.itemTable, items: model.items.table?.size ?? 0 },
      },
      `dlrm v${version} serves on ${model.provider}`,
    ],
    serve: (models, features) => {
      // The autoscaling signal for a KEDA ScaledObject: requests waiting for inference, read at each scrape.
      serviceMetrics.sampledGauge('ranking_queue_depth', 'Requests waiting for inference (the serving model version)', () => {
        const serving = models.acquire();
        try {
          return serving.model.batcher.queueLength;
        } finally {
          serving.release();
        }
      });
      const service = new RankingService(models, features, config, metrics);
      return {
        module: RankingModule.register(service),
        services: [ranking.RankingService],
        // Rank is the hot method: bytes in and out, on grpc-js directly; GetModelInfo stays a Nest handler.
        methods: [{ service: ranking.RankingService, method: 'rank', handle: (request, context) => service.rank(request, context) }],
      };
    },
  });
  const stop = running.close;
  let closing: Promise<void> | undefined;
  return Object.assign(running, {
    close: () =>
      (closing ??= (() => {
        // Queued requests run now rather than after their batch delay, so the drain does not wait for it.
        const lease = running.models.acquire();
        lease.model.batcher.drain();
        lease.release();
        return stop();
      })()),
  });
}
