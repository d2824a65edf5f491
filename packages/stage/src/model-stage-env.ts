import { featuresClientEnv } from '@recsys/service-kit';
import { z } from 'zod';
import type { ItemCacheSettings, ItemTableSettings } from '@recsys/serving';
import { itemCacheEnv, itemCacheSettings, itemTableEnv, itemTableSettings } from './item-cache-env.js';
import { parseExecutionProviders, SESSION_THREADS, type ExecutionProvider, type SessionThread } from '@recsys/serving';

const positiveInt = z.coerce.number().int().positive();

/** The variables every model-serving stage (pre-ranking, ranking) reads, beyond service-kit's base ones. */
export const modelStageEnv = {
  ...featuresClientEnv,
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
const threadVar = (fallback: SessionThread) => z.enum(SESSION_THREADS).default(fallback);

/**
 * A stage's onnxruntime variables, named after it: `RANKING_EXECUTION_PROVIDERS`, `RANKING_INTRA_OP_THREADS`,
 * `RANKING_CUDA_DEVICE_ID`, `RANKING_SESSION_THREAD`.
 */
export type SessionEnv<P extends string> = Record<`${P}_EXECUTION_PROVIDERS`, typeof providersVar> &
  Record<`${P}_INTRA_OP_THREADS`, typeof threadsVar> &
  Record<`${P}_CUDA_DEVICE_ID`, typeof deviceVar> &
  Record<`${P}_SESSION_THREAD`, ReturnType<typeof threadVar>>;

/**
 * `thread` is where the stage's sessions run unless `<P>_SESSION_THREAD` says otherwise: a worker for the batch models
 * (pre-ranking, ranking), the event loop's thread for retrieval's user tower (one row per request).
 */
export function sessionEnv<P extends string>(prefix: P, { thread = 'worker' }: { thread?: SessionThread } = {}): SessionEnv<P> {
  return {
    [`${prefix}_EXECUTION_PROVIDERS`]: providersVar,
    [`${prefix}_INTRA_OP_THREADS`]: threadsVar,
    [`${prefix}_CUDA_DEVICE_ID`]: deviceVar,
    [`${prefix}_SESSION_THREAD`]: threadVar(thread),
  } as SessionEnv<P>;
}

/** A stage's session settings, as ModelSessionOptions takes them. */
export interface SessionSettings {
  executionProviders: ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  sessionThread: SessionThread;
}

/** The sessionEnv part of a parsed environment. */
export function sessionSettings<P extends string>(e: ParsedSession<P>, prefix: P): SessionSettings {
  const session = e as unknown as Record<string, unknown>;
  return {
    executionProviders: session[`${prefix}_EXECUTION_PROVIDERS`] as ExecutionProvider[],
    intraOpThreads: session[`${prefix}_INTRA_OP_THREADS`] as number,
    cudaDeviceId: session[`${prefix}_CUDA_DEVICE_ID`] as number,
    sessionThread: session[`${prefix}_SESSION_THREAD`] as SessionThread,
  };
}

/** A parsed environment holding a stage's sessionEnv. */
export type ParsedSession<P extends string> = Record<`${P}_EXECUTION_PROVIDERS`, ExecutionProvider[]> &
  Record<`${P}_INTRA_OP_THREADS` | `${P}_CUDA_DEVICE_ID`, number> &
  Record<`${P}_SESSION_THREAD`, SessionThread>;

export interface ModelStageConfig extends SessionSettings {
  featuresAddress: string;
  /** Per feature call, when the caller's deadline is later or absent. */
  featuresTimeoutMs: number;
  /** Model root: `<modelsDir>/<model>/<integer>/` (and, for the pre-ranker, the two-tower versions it depends on). */
  modelsDir: string;
  /** Slow poll for new versions beside the directory watch; 0 turns it off. */
  modelPollIntervalMs: number;
  maxIdLength: number;
  /** The in-process cache of candidates' encoded item features (size 0: every request reads every item the table lacks). */
  itemCache: ItemCacheSettings;
  /** The full-catalogue table of encoded items per model version (max 0: none). */
  itemTable: ItemTableSettings;
}

/** A parsed environment holding modelStageEnv and the stage's sessionEnv. */
type ParsedModelStage<P extends string> = z.infer<z.ZodObject<typeof modelStageEnv>> & ParsedSession<P>;

/** The model-stage part of a stage's config from its parsed environment. */
export function modelStageConfig<P extends string>(e: ParsedModelStage<P>, prefix: P): ModelStageConfig {
  return {
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    modelsDir: e.MODELS_DIR,
    modelPollIntervalMs: e.MODEL_POLL_INTERVAL_MS,
    ...sessionSettings(e, prefix),
    maxIdLength: e.MAX_ID_LENGTH,
    itemCache: itemCacheSettings(e),
    itemTable: itemTableSettings(e),
  };
}
