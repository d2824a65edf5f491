import { features } from '@recsys/contracts';
import { createLogger, ServiceMetrics, startGrpcService, type Logger, type RunningGrpcService } from '@recsys/service-kit';
import { EventMetrics } from './event-metrics.js';
import type { FeaturesConfig } from './config.js';
import { FeatureModule } from './feature.module.js';
import { createFeatureStore, describeClusterNodes } from './store/index.js';

/**
 * Starts the feature service on the store the config names: Redis (REDIS_URL), a Redis Cluster
 * (REDIS_CLUSTER_NODES), or in memory when neither is set.
 */
export async function startFeatureService(
  config: FeaturesConfig,
  logger: Logger = createLogger('features', config.logLevel),
): Promise<RunningGrpcService> {
  const store = await createFeatureStore(config, {
    keyPrefix: config.redisKeyPrefix,
    popularityShards: config.redisClusterPopularityShards,
    itemBuckets: config.redisClusterItemBuckets,
    historyCap: config.historyCap,
    popularityHalfLifeMs: config.popularityHalfLifeMs,
    dedupTtlMs: config.dedupTtlMs,
    eventWeights: config.eventWeights,
    historyEventTypes: config.historyEventTypes,
    eventLogRetentionMs: config.eventLogRetentionMs,
    attributionWindowMs: config.attributionWindowMs,
  });
  const where = config.redisCluster
    ? `redis-cluster ${describeClusterNodes(config.redisCluster)}`
    : config.redisUrl
      ? redactUrl(config.redisUrl)
      : 'in-memory';
  logger.info({ store: where }, 'feature store ready');
  const metrics = new ServiceMetrics('features');
  const events = { metrics: new EventMetrics(metrics, config.onlineMetricsK), logger };
  return startGrpcService({
    name: 'features',
    metrics,
    module: FeatureModule.register(config, store, events),
    services: [features.FeatureService],
    config,
    logger,
    // The store closes after the gRPC server has drained its in-flight calls.
    release: () => store.close(),
  });
}

/** Passwords in a Redis URL never reach the logs. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
