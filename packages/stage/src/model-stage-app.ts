import type { BaseServiceConfig, GrpcServiceSpec, Logger, RunningGrpcService, ServiceMetrics } from '@recsys/service-kit';
import { startGrpcService } from '@recsys/service-kit';
import type { ModelName, ModelVersion } from '@recsys/model-format';
import { type ModelReloadEvent, ModelWatcher } from '@recsys/serving';
import { FeatureServiceClient } from './feature-client.js';
import type { ModelStageConfig } from './model-stage-env.js';

/** What a model stage (pre-ranking, ranking) brings to the shared start-up. */
export interface ModelStageSpec<M extends { readonly provider: string; release(): Promise<void> }> {
  /** The service's name for logs and metrics ("ranking"). */
  name: string;
  /** The model it serves, newest loadable version first, then each newer one as it is published. */
  model: ModelName;
  config: BaseServiceConfig & ModelStageConfig;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Makes a version servable (sessions, item table and cache, warm-up) with the feature client; throwing refuses the version. */
  load(version: ModelVersion, features: FeatureServiceClient): Promise<M>;
  onReload(event: ModelReloadEvent): void;
  /** The first version's log line: fields and message. */
  describe(version: string, model: M): [Record<string, unknown>, string];
  /**
   * The gRPC side: the Nest module serving the stage over the watcher and the feature client, its services, and the hot
   * methods served on grpc-js directly (request and answer as bytes).
   */
  serve(models: ModelWatcher<M>, features: FeatureServiceClient): Pick<GrpcServiceSpec, 'module' | 'services' | 'methods'>;
}

export interface RunningModelStage<M> extends RunningGrpcService {
  readonly models: ModelWatcher<M>;
  /** Looks for a new model version now; the process does this on SIGHUP. */
  checkModels(): Promise<void>;
}

/**
 * The one start-up of the model stages: the model watcher (the newest loadable version, then each newer one,
 * verified and warmed up before it is swapped in), the feature client, and the gRPC server, which reports
 * SERVING only once a model is loaded; on close the server drains, then the client and the models are released.
 */
export async function startModelStage<M extends { readonly provider: string; release(): Promise<void> }>(
  spec: ModelStageSpec<M>,
): Promise<RunningModelStage<M>> {
  const { config, logger } = spec;
  // Connected first: a version's item table is read from the feature service as it loads.
  const features = FeatureServiceClient.connect(config.featuresAddress, config.featuresTimeoutMs);
  let models: ModelWatcher<M>;
  try {
    models = await ModelWatcher.start<M>({
      root: config.modelsDir,
      name: spec.model,
      load: (version) => spec.load(version, features),
      release: (model) => model.release(),
      pollIntervalMs: config.modelPollIntervalMs,
      logger,
      onEvent: (event) => spec.onReload(event),
    });
  } catch (error) {
    features.close();
    throw error;
  }
  const lease = models.acquire();
  const [fields, message] = spec.describe(lease.version, lease.model);
  logger.info({ version: lease.version, provider: lease.model.provider, preferred: config.executionProviders, ...fields }, message);
  lease.release();
  const running = await startGrpcService({
    name: spec.name,
    ...spec.serve(models, features),
    config,
    logger,
    metrics: spec.metrics,
    release: async () => {
      await models.close();
      features.close();
    },
  });
  return Object.assign(running, { models, checkModels: () => models.check() });
}
