import { builtEntry, DEFAULT_PORTS } from '@recsys/service-kit';

export type ServiceName = 'features' | 'retrieval' | 'preranking' | 'ranking' | 'reranking' | 'gateway';

/** Start order: each service only calls the ones before it. */
export const SERVICE_NAMES: readonly ServiceName[] = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'];

/** The ports every service's config defaults to (gateway: gRPC), and the gateway's REST port: service-kit's, below the ephemeral range. */
export { DEFAULT_PORTS };

export const HOST = '127.0.0.1';

/** Each service's built entry point, relative to the repository root. */
export const SERVICE_ENTRIES: Readonly<Record<ServiceName, string>> = {
  features: 'services/features/dist/main.js',
  retrieval: 'services/retrieval/dist/main.js',
  preranking: 'services/preranking/dist/main.js',
  ranking: 'services/ranking/dist/main.js',
  reranking: 'services/reranking/dist/main.js',
  gateway: 'services/gateway/dist/main.js',
};

export const INDEX_CLI = 'services/retrieval/dist/index-cli.js';

/** How the services run: each as its own process (the default, and the Kubernetes shape), or all in one process. */
export type PipelineMode = 'split' | 'all-in-one';
export const PIPELINE_MODES: readonly PipelineMode[] = ['split', 'all-in-one'];

/** The all-in-one process's entry point: every service, calling each other in-process. */
export const ALL_IN_ONE_ENTRY = 'packages/all-in-one/dist/main.js';

/** A built entry point; a clear error naming the build to run when it is missing. */
export function builtScript(relative: string): string {
  return builtEntry(relative, '`pnpm run build` (or bash scripts/up.sh)');
}

export interface ServiceWiring {
  /** gRPC port per service (gateway: its gRPC port), all resolved (no 0); in all-in-one mode only features and gateway. */
  ports: Record<ServiceName, number>;
  httpPort: number;
  /** Metrics port per service when the launcher turns metrics on (all-in-one: the gateway's is the process's). */
  metricsPorts?: Partial<Record<ServiceName, number>>;
  modelsDir: string;
  indexDir: string;
  redisUrl: string | undefined;
}

/** Variables the launcher decides; inherited values of these are dropped so a stray shell export cannot rewire a service. */
const CONTROLLED = [
  'GRPC_HOST',
  'GRPC_PORT',
  'HTTP_HOST',
  'HTTP_PORT',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'REDIS_CLUSTER_POPULARITY_SHARDS',
  'REDIS_CLUSTER_ITEM_BUCKETS',
  'MODELS_DIR',
  'INDEX_DIR',
  'INDEX_BACKEND',
  'FEATURES_ADDRESS',
  'RETRIEVAL_ADDRESS',
  'PRERANKING_ADDRESS',
  'RANKING_ADDRESS',
  'RERANKING_ADDRESS',
  'AUTH_DISABLED',
  'GRPC_LISTEN',
  'FEATURES_GRPC_PORT',
  'STAGES_START',
];

export const address = (port: number) => `${HOST}:${port}`;

/**
 * One service's environment: the inherited one without the variables the launcher controls, the wiring, then the caller's extras.
 * The gateway runs with auth off unless API keys are configured (inherited or given).
 */
export function serviceEnv(
  name: ServiceName,
  wiring: ServiceWiring,
  inherited: NodeJS.ProcessEnv,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(inherited)) if (value !== undefined && !CONTROLLED.includes(key)) env[key] = value;
  env.GRPC_HOST = HOST;
  env.GRPC_PORT = String(wiring.ports[name]);
  const metricsPort = wiring.metricsPorts?.[name];
  if (metricsPort !== undefined) Object.assign(env, { METRICS_HOST: HOST, METRICS_PORT: String(metricsPort) });
  if (name !== 'features') env.FEATURES_ADDRESS = address(wiring.ports.features);
  switch (name) {
    case 'features':
      if (wiring.redisUrl !== undefined) env.REDIS_URL = wiring.redisUrl;
      break;
    case 'retrieval':
      Object.assign(env, { MODELS_DIR: wiring.modelsDir, INDEX_BACKEND: 'embedded', INDEX_DIR: wiring.indexDir });
      break;
    case 'preranking':
    case 'ranking':
      env.MODELS_DIR = wiring.modelsDir;
      break;
    case 'reranking':
      break;
    case 'gateway':
      Object.assign(env, {
        HTTP_HOST: HOST,
        HTTP_PORT: String(wiring.httpPort),
        RETRIEVAL_ADDRESS: address(wiring.ports.retrieval),
        PRERANKING_ADDRESS: address(wiring.ports.preranking),
        RANKING_ADDRESS: address(wiring.ports.ranking),
        RERANKING_ADDRESS: address(wiring.ports.reranking),
      });
      if (!gatewayHasKeys({ ...env, ...extra })) env.AUTH_DISABLED = 'true';
      break;
  }
  return { ...env, ...extra };
}

/**
 * The all-in-one process's environment: what each service would get alone, merged (the variables are the same; the
 * process wires the addresses itself, in-process), the gateway's ports as the process's, the feature service's port as
 * FEATURES_GRPC_PORT (for loading features and building the index), and the stages started on SIGUSR2 once both are done.
 */
export function allInOneEnv(
  wiring: ServiceWiring,
  inherited: NodeJS.ProcessEnv,
  extras: Partial<Record<ServiceName, Record<string, string>>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of SERVICE_NAMES) Object.assign(env, serviceEnv(name, wiring, inherited, extras[name]));
  const gateway = serviceEnv('gateway', wiring, inherited, extras.gateway);
  for (const key of ['FEATURES_ADDRESS', 'RETRIEVAL_ADDRESS', 'PRERANKING_ADDRESS', 'RANKING_ADDRESS', 'RERANKING_ADDRESS'])
    delete env[key];
  Object.assign(env, {
    GRPC_PORT: gateway.GRPC_PORT,
    FEATURES_GRPC_PORT: String(wiring.ports.features),
    STAGES_START: 'on-sigusr2',
  });
  // The process's one metrics endpoint is the gateway's setting.
  if (gateway.METRICS_PORT !== undefined) env.METRICS_PORT = gateway.METRICS_PORT;
  return env;
}

export function gatewayHasKeys(env: Record<string, string | undefined>): boolean {
  return Boolean(env.API_KEYS || env.API_KEYS_FILE);
}
