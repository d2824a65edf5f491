import { features } from '@recsys/contracts';
import { createLogger, startGrpcService, type Logger, type RunningGrpcService } from '@recsys/service-kit';
import type { FeaturesConfig } from './config.js';
import { FeatureModule } from './feature.module.js';
import { createFeatureStore } from './store/index.js';

/** Starts the feature service on the store the config names (Redis, or in memory when REDIS_URL is unset). */
export async function startFeatureService(
  config: FeaturesConfig,
  logger: Logger = createLogger('features', config.logLevel),
): Promise<RunningGrpcService> {
  const store = await createFeatureStore(config.redisUrl, {
    keyPrefix: config.redisKeyPrefix,
    historyCap: config.historyCap,
    popularityHalfLifeMs: config.popularityHalfLifeMs,
    dedupTtlMs: config.dedupTtlMs,
    eventWeights: config.eventWeights,
    historyEventTypes: config.historyEventTypes,
  });
  logger.info({ store: config.redisUrl ? redactUrl(config.redisUrl) : 'in-memory' }, 'feature store ready');
  return startGrpcService({
    name: 'features',
    module: FeatureModule.register(config, store),
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
