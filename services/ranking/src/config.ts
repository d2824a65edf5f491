import { addressVar, baseServiceConfig, baseServiceEnv, booleanVar, parseEnv, portVar, type BaseServiceConfig } from '@recsys/service-kit';
import { type ExecutionProvider, itemCacheEnv, itemCacheSettings, type ItemCacheSettings, parseExecutionProviders } from '@recsys/serving';
import { z } from 'zod';

export interface RankingConfig extends BaseServiceConfig {
  featuresAddress: string;
  /** Per feature call, when the caller's deadline is later or absent. */
  featuresTimeoutMs: number;
  /** Model root: the DLRM versions are `<modelsDir>/dlrm/<integer>/`. */
  modelsDir: string;
  /** Slow poll for new versions beside the directory watch; 0 turns it off. */
  modelPollIntervalMs: number;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  /** False: every inference run holds one request's candidates (the benchmark's unbatched case). */
  batching: boolean;
  /** Candidates per inference run at most; a larger request runs in chunks. */
  maxBatchSize: number;
  /** How long the oldest queued request waits for others to fill a batch. */
  maxQueueDelayMs: number;
  /** Requests waiting for inference at most; more are refused with RESOURCE_EXHAUSTED. */
  maxQueueLength: number;
  maxCandidates: number;
  maxIdLength: number;
  /** The in-process cache of candidates' encoded item features (size 0: every request reads every item). */
  itemCache: ItemCacheSettings;
}

const positiveInt = z.coerce.number().int().positive();

export const rankingEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(50054),
  FEATURES_ADDRESS: addressVar('127.0.0.1:50051'),
  FEATURES_TIMEOUT_MS: positiveInt.max(60_000).default(2000),
  MODELS_DIR: z.string().min(1).default('models'),
  MODEL_POLL_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
  RANKING_EXECUTION_PROVIDERS: z.string().transform(parseExecutionProviders).default(['cpu']),
  RANKING_INTRA_OP_THREADS: positiveInt.max(256).default(1),
  RANKING_CUDA_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  RANKING_BATCHING: booleanVar.default(true),
  RANKING_MAX_BATCH_SIZE: positiveInt.max(65_536).default(2048),
  RANKING_MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(1000).default(1),
  RANKING_MAX_QUEUE_LENGTH: positiveInt.max(100_000).default(512),
  RANKING_MAX_CANDIDATES: positiveInt.max(100_000).default(2000),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
  ...itemCacheEnv,
};

export function loadRankingConfig(env: NodeJS.ProcessEnv = process.env): RankingConfig {
  const e = parseEnv(rankingEnv, env);
  return {
    ...baseServiceConfig(e),
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    modelsDir: e.MODELS_DIR,
    modelPollIntervalMs: e.MODEL_POLL_INTERVAL_MS,
    executionProviders: e.RANKING_EXECUTION_PROVIDERS,
    intraOpThreads: e.RANKING_INTRA_OP_THREADS,
    cudaDeviceId: e.RANKING_CUDA_DEVICE_ID,
    batching: e.RANKING_BATCHING,
    maxBatchSize: e.RANKING_MAX_BATCH_SIZE,
    maxQueueDelayMs: e.RANKING_MAX_QUEUE_DELAY_MS,
    maxQueueLength: e.RANKING_MAX_QUEUE_LENGTH,
    maxCandidates: e.RANKING_MAX_CANDIDATES,
    maxIdLength: e.MAX_ID_LENGTH,
    itemCache: itemCacheSettings(e),
  };
}
