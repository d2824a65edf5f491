import { features, gateway, preranking, ranking, reranking, retrieval } from '@recsys/contracts';
import {
  createLogger,
  createServiceClient,
  ServiceMetrics,
  startGrpcService,
  type Logger,
  type RunningGrpcService,
} from '@recsys/service-kit';
import { AdaptiveCounts } from './adaptive-counts.js';
import { Admission, AdmittedGatewayApi, admissionMetrics } from './admission.js';
import type { GatewayConfig } from './config.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { GatewayModule } from './gateway.module.js';
import { GrpcAccess } from './http/grpc-access.js';
import { KeyFileWatcher } from './http/key-file-watcher.js';
import { startHttpServer } from './http/http-app.js';
import { Orchestrator, type StageClients } from './orchestrator.js';
import { ImpressionLog } from './impression-log.js';
import { PopularFallback } from './popular-fallback.js';

export interface RunningGateway extends RunningGrpcService {
  /** The REST API's port; -1 when it is off. */
  readonly httpPort: number;
  readonly orchestrator: Orchestrator;
  /** Admission control in front of the orchestrator (both transports). */
  readonly admission: Admission;
  /** Reads the API keys again (SIGHUP, or the keys file changed); the current keys stay when the new ones do not validate. */
  reloadKeys(): boolean;
}

/** Connects the stage clients and starts the gateway's gRPC service and REST API over one orchestrator. */
export async function startGatewayService(
  config: GatewayConfig,
  logger: Logger = createLogger('gateway', config.logLevel),
): Promise<RunningGateway> {
  const serviceMetrics = new ServiceMetrics('gateway');
  const metrics = new GatewayMetrics(serviceMetrics);
  // A restarted stage is used again within a second (grpc-js's default reconnect backoff grows to two minutes); calls
  // spread over every address a dns:/// name resolves to (a headless Kubernetes Service's replicas) as every
  // service-kit client's do.
  const options = {
    channelOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    },
  };
  const clients: StageClients = {
    features: createServiceClient(features.FeatureService, config.addresses.features, options),
    retrieval: createServiceClient(retrieval.RetrievalService, config.addresses.retrieval, options),
    preranking: createServiceClient(preranking.PrerankingService, config.addresses.preranking, options),
    ranking: createServiceClient(ranking.RankingService, config.addresses.ranking, options),
    reranking: createServiceClient(reranking.RerankingService, config.addresses.reranking, options),
  };
  const adaptive = new AdaptiveCounts(config.adaptive, (change) => {
    metrics.countChanges.inc({ count: change.count, direction: change.to < change.from ? 'down' : 'up' });
    metrics.candidateCount.set({ count: change.count }, change.to);
    logger.info(change, 'candidate count adapted');
  });
  const initial = adaptive.current();
  metrics.candidateCount.set({ count: 'retrieve' }, initial.retrieve);
  metrics.candidateCount.set({ count: 'rank' }, initial.rank);
  const popular = new PopularFallback(
    clients.features,
    { limit: config.adaptive.retrieveMax, refreshMs: config.popularRefreshMs, timeoutMs: config.featuresTimeoutMs },
    metrics,
    logger,
  );
  const impressions = new ImpressionLog(clients.features, config.impressionLog, serviceMetrics, logger);
  const admission = new Admission(config.admission, admissionMetrics(serviceMetrics));
  const orchestrator = new Orchestrator(clients, config, adaptive, popular, metrics, logger, impressions, () => admission.lagMs);
  const api = new AdmittedGatewayApi(orchestrator, admission);
  const access = GrpcAccess.fromConfig(config.access, serviceMetrics, logger);
  await access.control.ready();
  const reloadKeys = () => access.control.reloadKeys(config.access);
  const keyWatcher =
    config.access.apiKeysFile && !config.access.authDisabled ? new KeyFileWatcher(config.access.apiKeysFile, reloadKeys) : undefined;
  let http: { port: number; close(): Promise<void> } | undefined;
  const release = async () => {
    admission.stop();
    keyWatcher?.close();
    popular.close();
    await http?.close();
    orchestrator.close();
    // After the servers drained: the last answers' impressions are sent before the clients close.
    await impressions.close();
    await access.control.close();
    for (const client of Object.values(clients)) client.close();
  };
  const service = await startGrpcService({
    name: 'gateway',
    module: GatewayModule.register(api, access),
    services: [gateway.GatewayService],
    config,
    logger,
    metrics: serviceMetrics,
    // The same request size limit as the REST API: a client's call cannot make the gateway buffer 64 MiB.
    maxReceiveMessageBytes: config.access.maxBodyBytes,
    release,
  });
  try {
    if (config.httpPort >= 0) http = await startHttpServer(api, config, logger, serviceMetrics, access, admission);
  } catch (error) {
    await service.close();
    throw error;
  }
  popular.start();
  impressions.start();
  admission.start();
  if (keyWatcher && config.access.apiKeysReloadMs > 0) keyWatcher.start(config.access.apiKeysReloadMs);
  logger.info({ httpPort: http?.port ?? -1, stages: config.addresses }, 'gateway ready');
  return Object.assign(service, { httpPort: http?.port ?? -1, orchestrator, admission, reloadKeys });
}
