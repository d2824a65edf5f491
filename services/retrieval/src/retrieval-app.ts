import { features, retrieval } from '@recsys/contracts';
import {
  createLogger,
  createServiceClient,
  ServiceMetrics,
  startGrpcService,
  type Logger,
  type RunningGrpcService,
} from '@recsys/service-kit';
import type { RetrievalConfig } from './config.js';
import { createIndexSource, type IndexSource } from './index-source.js';
import { IndexWatcher } from './index-watcher.js';
import { RetrievalMetrics } from './retrieval-metrics.js';
import { RetrievalModule } from './retrieval.module.js';
import { PopularItemsCache } from './channels/popular-cache.js';
import { type RetrievalFeatureReader, RetrievalService } from './retrieval-service.js';
import { loadServingIndex, ServingIndexHolder, type ServingIndex, type TowerOptions } from './serving-index.js';

export interface RunningRetrievalService extends RunningGrpcService {
  /** The pair serving now (index version and user tower). */
  readonly serving: () => ServingIndex;
  /** Looks for a new index version now instead of waiting for the next poll. */
  readonly checkIndex: () => Promise<void>;
}

/** The newest index version with its user tower, or an error that says what is missing. */
async function loadInitialIndex(source: IndexSource, modelsDir: string, towerOptions: TowerOptions): Promise<ServingIndex> {
  const version = await source.latestVersion();
  if (version === undefined) {
    throw new Error(`no index version under ${source.location}: build one with \`recsys-index build --models ${modelsDir} ...\``);
  }
  return loadServingIndex(source, version, modelsDir, towerOptions);
}

/**
 * Starts retrieval: the newest index version and the user tower of the two-tower version it was built from,
 * the feature-service client, the gRPC service, and a watcher that swaps in new index versions.
 */
export async function startRetrievalService(
  config: RetrievalConfig,
  logger: Logger = createLogger('retrieval', config.logLevel),
): Promise<RunningRetrievalService> {
  const towerOptions: TowerOptions = {
    providers: config.executionProviders,
    intraOpThreads: config.intraOpThreads,
    cudaDeviceId: config.cudaDeviceId,
    thread: config.sessionThread,
    logger: logger.child({ component: 'onnx' }),
  };
  const source = createIndexSource(config.index, {
    expansionSearch: config.indexExpansionSearch,
    expansionPerResult: config.indexExpansionPerResult,
    neighbourCacheItems: config.itemToItemCacheItems,
    searchWorkers: config.indexSearchWorkers,
  });
  const load = (version: string) => loadServingIndex(source, version, config.modelsDir, towerOptions);
  let initial: ServingIndex;
  try {
    initial = await loadInitialIndex(source, config.modelsDir, towerOptions);
  } catch (error) {
    await source.close();
    throw error;
  }
  const { info } = initial;
  logger.info(
    {
      index: source.location,
      version: info.version,
      modelVersion: info.modelVersion,
      size: info.size,
      dimension: info.dimension,
      metric: info.metric,
    },
    `index version ${info.version} serving (two-tower ${info.modelVersion}, ${initial.tower.provider})`,
  );
  const serviceMetrics = new ServiceMetrics('retrieval');
  const metrics = new RetrievalMetrics(serviceMetrics);
  const holder = new ServingIndexHolder(initial, (error, index) =>
    logger.warn({ err: error, version: index.info.version }, 'closing a retired index version failed'),
  );
  metrics.watchNeighbourCache(() => holder.current.store);
  metrics.watchSearchWorkers(() => holder.current.store);
  const featureClient = createServiceClient(features.FeatureService, config.featuresAddress, {
    defaultTimeoutMs: config.featuresTimeoutMs,
  });
  const watcher = new IndexWatcher(source, holder, load, metrics, logger);
  // The popular list from memory (refreshed in the background); the user comes with the request from the gateway.
  const popular =
    config.popularRefreshMs > 0
      ? new PopularItemsCache(featureClient, {
          refreshMs: config.popularRefreshMs,
          items: config.popularCacheItems,
          maxFilters: 256,
          maxStaleMs: Math.max(60_000, config.popularRefreshMs * 10),
        })
      : featureClient;
  const reader: RetrievalFeatureReader = {
    getUserFeatures: (request) => featureClient.getUserFeatures(request),
    batchGetItemFeatures: (request) => featureClient.batchGetItemFeatures(request),
    getPopularItems: (request, options) => popular.getPopularItems(request, options),
  };
  const service = new RetrievalService(reader, holder, config, metrics, logger);
  const release = async () => {
    await watcher.stop();
    featureClient.close();
    await holder.close();
    await source.close();
  };
  const running = await startGrpcService({
    name: 'retrieval',
    module: RetrievalModule.register(service),
    services: [retrieval.RetrievalService],
    // Retrieve is the hot method: served on grpc-js directly, its answer's candidates written as bytes.
    methods: [{ service: retrieval.RetrievalService, method: 'retrieve', handle: (request) => service.retrieveBytes(request) }],
    config,
    logger,
    metrics: serviceMetrics,
    release: release,
  });
  if (config.indexPollMs > 0) watcher.start(config.indexPollMs);
  return Object.assign(running, { serving: () => holder.current, checkIndex: () => watcher.check() });
}
