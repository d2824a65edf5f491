import type { Server } from 'node:http';
import { baseServiceConfig, baseServiceEnv, createLogger, inProcessAddress, parseEnv, startMetricsServer } from '@recsys/service-kit';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { z } from 'zod';
import {
  ALL_IN_ONE_SERVICES,
  SERVICES,
  THREAD_STAGES,
  type AllInOneService,
  type HostedService,
  type PreparedService,
  type ThreadStage,
} from './services.js';
import { startStageThread, type MetricsJson, type StageThread } from './stage-threads.js';

export { ALL_IN_ONE_SERVICES, THREAD_STAGES, type AllInOneService, type ThreadStage } from './services.js';

/** Variables of the all-in-one process itself; every service reads the rest of the environment as it would alone. */
const allInOneEnv = {
  ...baseServiceEnv,
  /**
   * The feature service's own gRPC port, for the offline tools (loading features, building an index); unset: it takes
   * calls in-process only.
   */
  FEATURES_GRPC_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /**
   * Stages that run on a worker thread of their own (comma-separated: retrieval, preranking, ranking, reranking),
   * reached over the in-process transport as bytes; the rest share the main thread with the gateway. Empty: none.
   */
  STAGE_THREADS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    )
    .pipe(z.array(z.enum(THREAD_STAGES)).refine((names) => new Set(names).size === names.length, 'a stage is named twice')),
};

export interface AllInOneConfig {
  /** The one metrics endpoint (every service's registry, labelled by service); -1 off. */
  metricsHost: string;
  metricsPort: number;
  logLevel: ReturnType<typeof baseServiceConfig>['logLevel'];
  featuresGrpcPort: number | undefined;
  /** The stages on worker threads of their own. */
  stageThreads: ThreadStage[];
}

export function loadAllInOneConfig(env: NodeJS.ProcessEnv = process.env): AllInOneConfig {
  const e = parseEnv(allInOneEnv, env);
  const base = baseServiceConfig(e);
  return {
    metricsHost: base.metricsHost,
    metricsPort: base.metricsPort,
    logLevel: base.logLevel,
    featuresGrpcPort: e.FEATURES_GRPC_PORT,
    stageThreads: e.STAGE_THREADS,
  };
}

/**
 * Each service's environment in the all-in-one process: the process's own, with the wiring the mode decides. Stages take
 * calls in-process only; the gateway listens on its ports (GRPC_PORT, HTTP_PORT) and in-process; the feature service on
 * FEATURES_GRPC_PORT too when it is set. Per-service metrics endpoints are off: the process serves one for all.
 */
export function serviceEnvOf(name: AllInOneService, env: NodeJS.ProcessEnv, config: AllInOneConfig): NodeJS.ProcessEnv {
  const wired: NodeJS.ProcessEnv = { ...env, METRICS_PORT: '-1', FEATURES_ADDRESS: inProcessAddress('features') };
  switch (name) {
    case 'features':
      if (config.featuresGrpcPort === undefined) return { ...wired, GRPC_LISTEN: 'in-process' };
      return { ...wired, GRPC_LISTEN: 'both', GRPC_PORT: String(config.featuresGrpcPort) };
    case 'gateway':
      return {
        ...wired,
        GRPC_LISTEN: 'both',
        RETRIEVAL_ADDRESS: inProcessAddress('retrieval'),
        PRERANKING_ADDRESS: inProcessAddress('preranking'),
        RANKING_ADDRESS: inProcessAddress('ranking'),
        RERANKING_ADDRESS: inProcessAddress('reranking'),
      };
    default:
      return { ...wired, GRPC_LISTEN: 'in-process' };
  }
}

export interface AllInOne {
  /** The services started so far, by name: on this thread, or on a thread of their own (STAGE_THREADS). */
  readonly services: Partial<Record<AllInOneService, { readonly thread?: StageThread }>>;
  /** The combined metrics endpoint's port; -1 when off. */
  readonly metricsPort: number;
  /** Starts the stages and the gateway (once; startAllInOne does it unless told to wait). */
  startStages(): Promise<void>;
  /** Pre-ranking and ranking look for new model versions; the gateway reads its API keys again. */
  reload(): void;
  /** Stops the gateway first and the feature service last, each draining its in-flight calls. */
  close(): Promise<void>;
}

export interface AllInOneOptions {
  /** Starts the feature service alone; startStages starts the rest. */
  deferStages?: boolean;
  /**
   * A stage thread ended on its own (an uncaught error in its stage): calls to it answer UNAVAILABLE from then on.
   * The process's entry point stops the process, as a stage's own process would have ended. Default: logged.
   */
  onStageThreadExit?: (name: ThreadStage, error: Error) => void;
}

/** A service as the process holds it: its close, metrics and reload, wherever it runs. */
interface Held {
  readonly thread?: StageThread;
  metrics(): Promise<MetricsJson>;
  reload(): void;
  close(): Promise<void>;
}

const heldHere = (hosted: HostedService): Held => ({
  metrics: () => hosted.running.metrics.registry.getMetricsAsJSON(),
  reload: hosted.reload,
  close: () => hosted.running.close(),
});

const heldOnThread = (thread: StageThread): Held => ({ thread, metrics: thread.metrics, reload: thread.reload, close: thread.close });

/**
 * Every service of the pipeline in this process: the feature service first, then (now, or when startStages is called,
 * once the feature data and the index are in place) retrieval, pre-ranking, ranking and re-ranking, then the gateway.
 * Each is the same start function its own process runs, configured from the same variables; the stages named in
 * STAGE_THREADS run it on a worker thread of their own.
 */
export async function startAllInOne(env: NodeJS.ProcessEnv = process.env, options: AllInOneOptions = {}): Promise<AllInOne> {
  const config = loadAllInOneConfig(env);
  const processLogger = createLogger('all-in-one', config.logLevel);
  // Every configuration is read before anything starts, so a bad variable fails at once with its name.
  const envs = Object.fromEntries(ALL_IN_ONE_SERVICES.map((name) => [name, serviceEnvOf(name, env, config)])) as Record<
    AllInOneService,
    NodeJS.ProcessEnv
  >;
  const prepared = Object.fromEntries(ALL_IN_ONE_SERVICES.map((name) => [name, SERVICES[name](envs[name])])) as Record<
    AllInOneService,
    PreparedService
  >;
  const onThreadExit =
    options.onStageThreadExit ??
    ((name: ThreadStage, error: Error) =>
      processLogger.error({ err: error, stage: name }, 'a stage thread ended; its calls answer UNAVAILABLE'));
  const services: Partial<Record<AllInOneService, Held>> = {};
  let metricsServer: Server | undefined;
  let metricsPort = -1;

  const start = async (name: AllInOneService) => {
    services[name] = (config.stageThreads as readonly string[]).includes(name)
      ? heldOnThread(await startStageThread(name as ThreadStage, envs[name], processLogger, onThreadExit))
      : heldHere(await prepared[name].start(createLogger(name, prepared[name].logLevel)));
  };
  const close = async () => {
    for (const name of [...ALL_IN_ONE_SERVICES].reverse()) {
      const service = services[name];
      delete services[name];
      await service?.close();
    }
    await new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
  };
  const failWith = async (error: unknown): Promise<never> => {
    await close().catch(() => undefined);
    throw error;
  };

  await start('features').catch(failWith);
  if (config.metricsPort >= 0) {
    const sources = () => Object.values(services).map((service) => service.metrics());
    const started = await startMetricsServer(combinedRegistry(sources), config.metricsPort, config.metricsHost).catch(failWith);
    metricsServer = started.server;
    metricsPort = started.port;
  }

  let stages: Promise<void> | undefined;
  const startStages = () =>
    (stages ??= (async () => {
      await Promise.all(THREAD_STAGES.map(start)).catch(failWith);
      await start('gateway').catch(failWith);
    })());
  if (!options.deferStages) await startStages();

  return {
    services,
    metricsPort,
    startStages,
    reload: () => {
      for (const service of Object.values(services)) service.reload();
    },
    close,
  };
}

/**
 * One registry view over the services' own ones (each labels its series with its service name): what a scrape of the
 * separate processes would have found, in one answer.
 */
function combinedRegistry(sources: () => Promise<MetricsJson>[]): Registry {
  const view = {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    metrics: async () => {
      const metrics = await Promise.all(sources());
      return AggregatorRegistry.aggregate(metrics).metrics();
    },
  };
  return view as unknown as Registry;
}
