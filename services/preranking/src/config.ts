import { baseServiceConfig, baseServiceEnv, ConfigError, parseEnv, portVar, type BaseServiceConfig, addressVar } from '@recsys/service-kit';
import { type ExecutionProvider, itemCacheEnv, itemCacheSettings, type ItemCacheSettings, parseExecutionProviders } from '@recsys/serving';
import { z } from 'zod';

export interface PrerankingConfig extends BaseServiceConfig {
  featuresAddress: string;
  /** Per feature call, when the caller's deadline is later or absent. */
  featuresTimeoutMs: number;
  /** Model root: `<modelsDir>/preranker/<integer>/` and the two-tower versions they depend on. */
  modelsDir: string;
  /** Slow poll for new versions beside the directory watch; 0 turns it off. */
  modelPollIntervalMs: number;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  /** Candidates kept when a request's limit is 0. */
  defaultLimit: number;
  maxLimit: number;
  /** Candidates scored per request at most (all in one run). */
  maxCandidates: number;
  maxIdLength: number;
  /** The in-process cache of candidates' encoded item features (size 0: every request reads every item). */
  itemCache: ItemCacheSettings;
}

const positiveInt = z.coerce.number().int().positive();

export const prerankingEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(50053),
  FEATURES_ADDRESS: addressVar('127.0.0.1:50051'),
  FEATURES_TIMEOUT_MS: positiveInt.max(60_000).default(2000),
  MODELS_DIR: z.string().min(1).default('models'),
  MODEL_POLL_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
  PRERANKING_EXECUTION_PROVIDERS: z.string().transform(parseExecutionProviders).default(['cpu']),
  PRERANKING_INTRA_OP_THREADS: positiveInt.max(256).default(1),
  PRERANKING_CUDA_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  PRERANKING_DEFAULT_LIMIT: positiveInt.default(200),
  PRERANKING_MAX_LIMIT: positiveInt.max(100_000).default(1000),
  PRERANKING_MAX_CANDIDATES: positiveInt.max(100_000).default(5000),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
  ...itemCacheEnv,
};

export function loadPrerankingConfig(env: NodeJS.ProcessEnv = process.env): PrerankingConfig {
  const e = parseEnv(prerankingEnv, env);
  if (e.PRERANKING_DEFAULT_LIMIT > e.PRERANKING_MAX_LIMIT) {
    throw new ConfigError('PRERANKING_DEFAULT_LIMIT', `must not exceed PRERANKING_MAX_LIMIT (${e.PRERANKING_MAX_LIMIT})`);
  }
  return {
    ...baseServiceConfig(e),
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    modelsDir: e.MODELS_DIR,
    modelPollIntervalMs: e.MODEL_POLL_INTERVAL_MS,
    executionProviders: e.PRERANKING_EXECUTION_PROVIDERS,
    intraOpThreads: e.PRERANKING_INTRA_OP_THREADS,
    cudaDeviceId: e.PRERANKING_CUDA_DEVICE_ID,
    defaultLimit: e.PRERANKING_DEFAULT_LIMIT,
    maxLimit: e.PRERANKING_MAX_LIMIT,
    maxCandidates: e.PRERANKING_MAX_CANDIDATES,
    maxIdLength: e.MAX_ID_LENGTH,
    itemCache: itemCacheSettings(e),
  };
}
