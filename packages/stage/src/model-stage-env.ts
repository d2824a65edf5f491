import { addressVar, defaultAddress } from '@recsys/service-kit';
import { z } from 'zod';
import type { ItemCacheSettings, ItemTableSettings } from '@recsys/serving';
import { itemCacheEnv, itemCacheSettings, itemTableEnv, itemTableSettings } from './item-cache-env.js';
import { parseExecutionProviders, SESSION_THREADS, type ExecutionProvider, type SessionThread } from '@recsys/serving';

const positiveInt = z.coerce.number().int().positive();

/** The variables every model-serving stage (pre-ranking, ranking) reads, beyond service-kit's base ones. */
export const modelStageEnv = {
  FEATURES_ADDRESS: addressVar(defaultAddress('features')),
  FEATURES_TIMEOUT_MS: positiveInt.max(60_000).default(2000),
  MODELS_DIR: z.string().min(1).default('models'),
  MODEL_POLL_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
  ...itemCacheEnv,
  ...itemTableEnv,
};

const providersVar = z.string().transform(parseExecutionProviders).default(['cpu']);
const threadsVar = positiveInt.max(256).default(1);
const deviceVar = z.coerce.number().int().min(0).default(0);
/** worker: the model runs on a thread of its own and the event loop keeps serving meanwhile (see ModelSession). */
const threadVar = z.enum(SESSION_THREADS).default('worker');

/**
 * A stage's onnxruntime variables, named after it: `RANKING_EXECUTION_PROVIDERS`, `RANKING_INTRA_OP_THREADS`,
 * `RANKING_CUDA_DEVICE_ID`, `RANKING_SESSION_THREAD`.
 */
export type SessionEnv<P extends string> = Record<`${P}_EXECUTION_PROVIDERS`, typeof providersVar> &
  Record<`${P}_INTRA_OP_THREADS`, typeof threadsVar> &
  Record<`${P}_CUDA_DEVICE_ID`, typeof deviceVar> &
  Record<`${P}_SESSION_THREAD`, typeof threadVar>;

export function sessionEnv<P extends string>(prefix: P): SessionEnv<P> {
  return {
    [`${prefix}_EXECUTION_PROVIDERS`]: providersVar,
    [`${prefix}_INTRA_OP_THREADS`]: threadsVar,
    [`${prefix}_CUDA_DEVICE_ID`]: deviceVar,
    [`${prefix}_SESSION_THREAD`]: threadVar,
  } as SessionEnv<P>;
}

export interface ModelStageConfig {
  featuresAddress: string;
  /** Per feature call, when the caller's deadline is later or absent. */
  featuresTimeoutMs: number;
  /** Model root: `<modelsDir>/<model>/<integer>/` (and, for the pre-ranker, the two-tower versions it depends on). */
  modelsDir: string;
  /** Slow poll for new versions beside the directory watch; 0 turns it off. */
  modelPollIntervalMs: number;
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  /** Where the model's session runs: a worker thread of its own, or the event loop's thread. */
  sessionThread: SessionThread;
  maxIdLength: number;
  /** The in-process cache of candidates' encoded item features (size 0: every request reads every item the table lacks). */
  itemCache: ItemCacheSettings;
  /** The full-catalogue table of encoded items per model version (max 0: none). */
  itemTable: ItemTableSettings;
}

/** A parsed environment holding modelStageEnv and the stage's sessionEnv. */
type ParsedModelStage<P extends string> = z.infer<z.ZodObject<typeof modelStageEnv>> &
  Record<`${P}_EXECUTION_PROVIDERS`, ExecutionProvider[]> &
  Record<`${P}_INTRA_OP_THREADS` | `${P}_CUDA_DEVICE_ID`, number> &
  Record<`${P}_SESSION_THREAD`, SessionThread>;

/** The model-stage part of a stage's config from its parsed environment. */
export function modelStageConfig<P extends string>(e: ParsedModelStage<P>, prefix: P): ModelStageConfig {
  const session = e as unknown as Record<string, unknown>;
  return {
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    modelsDir: e.MODELS_DIR,
    modelPollIntervalMs: e.MODEL_POLL_INTERVAL_MS,
    executionProviders: session[`${prefix}_EXECUTION_PROVIDERS`] as ExecutionProvider[],
    intraOpThreads: session[`${prefix}_INTRA_OP_THREADS`] as number,
    cudaDeviceId: session[`${prefix}_CUDA_DEVICE_ID`] as number,
    sessionThread: session[`${prefix}_SESSION_THREAD`] as SessionThread,
    maxIdLength: e.MAX_ID_LENGTH,
    itemCache: itemCacheSettings(e),
    itemTable: itemTableSettings(e),
  };
}
