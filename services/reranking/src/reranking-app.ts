import { features, reranking } from '@recsys/contracts';
import {
  ConfigError,
  createLogger,
  createServiceClient,
  ServiceMetrics,
  startGrpcService,
  type Logger,
  type RunningGrpcService,
} from '@recsys/service-kit';
import type { RerankingConfig } from './config.js';
import { GrpcFeatureSource } from './feature-source.js';
import { RerankingMetrics } from './reranking-metrics.js';
import { RerankingModule } from './reranking.module.js';
import { RerankingService } from './reranking-service.js';
import { RuleEngine } from './rule-engine.js';
import { RulesFileError } from './rules-file.js';
import { buildRules } from './rules/build-rules.js';

/** Builds the configured rules (loading MMR vectors) and starts the re-ranking service. */
export async function startRerankingService(
  config: RerankingConfig,
  logger: Logger = createLogger('reranking', config.logLevel),
): Promise<RunningGrpcService> {
  const rules = await buildRules(config.rules).catch((error: unknown) => {
    throw error instanceof RulesFileError ? new ConfigError('RERANKING_RULES_FILE', error.message) : error;
  });
  logger.info({ source: config.rules.source, rules: rules.map((rule) => rule.name) }, 'rules loaded');
  const serviceMetrics = new ServiceMetrics('reranking');
  const metrics = new RerankingMetrics(serviceMetrics);
  const client = createServiceClient(features.FeatureService, config.featuresAddress, { defaultTimeoutMs: config.featuresTimeoutMs });
  const source = new GrpcFeatureSource(
    client,
    {
      attempts: config.featuresAttempts,
      attemptTimeoutMs: config.featuresTimeoutMs,
      reserveMs: config.deadlineReserveMs,
      backoffMs: config.featuresBackoffMs,
    },
    metrics,
  );
  const engine = new RuleEngine(rules, source, metrics, logger);
  const service = new RerankingService(engine, config);
  return startGrpcService({
    name: 'reranking',
    module: RerankingModule.register(service),
    services: [reranking.RerankingService],
    // Rerank, the service's one method, is hot: bytes in and out, on grpc-js directly.
    methods: [{ service: reranking.RerankingService, method: 'rerank', handle: (request) => service.rerank(request) }],
    config,
    logger,
    metrics: serviceMetrics,
    release: () => client.close(),
  });
}
