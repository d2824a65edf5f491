import {
  baseServiceConfig,
  baseServiceEnv,
  booleanVar,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { modelStageConfig, modelStageEnv, sessionEnv, type ModelStageConfig } from '@recsys/stage';
import { z } from 'zod';

export interface RankingConfig extends BaseServiceConfig, ModelStageConfig {
  /** False: every inference run holds one request's candidates (the benchmark's unbatched case). */
  batching: boolean;
  /** Candidates per inference run at most; a larger request runs in chunks. */
  maxBatchSize: number;
  /** How long the oldest queued request waits for others to fill a batch. */
  maxQueueDelayMs: number;
  /** Requests waiting for inference at most; more are refused with RESOURCE_EXHAUSTED. */
  maxQueueLength: number;
  maxCandidates: number;
}

const positiveInt = z.coerce.number().int().positive();

export const rankingEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.ranking),
  ...modelStageEnv,
  ...sessionEnv('RANKING'),
  RANKING_BATCHING: booleanVar.default(true),
  RANKING_MAX_BATCH_SIZE: positiveInt.max(65_536).default(2048),
  RANKING_MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(1000).default(1),
  RANKING_MAX_QUEUE_LENGTH: positiveInt.max(100_000).default(512),
  RANKING_MAX_CANDIDATES: positiveInt.max(100_000).default(2000),
};

export function loadRankingConfig(env: NodeJS.ProcessEnv = process.env): RankingConfig {
  const e = parseEnv(rankingEnv, env);
  return {
    ...baseServiceConfig(e),
    ...modelStageConfig(e, 'RANKING'),
    batching: e.RANKING_BATCHING,
    maxBatchSize: e.RANKING_MAX_BATCH_SIZE,
    maxQueueDelayMs: e.RANKING_MAX_QUEUE_DELAY_MS,
    maxQueueLength: e.RANKING_MAX_QUEUE_LENGTH,
    maxCandidates: e.RANKING_MAX_CANDIDATES,
  };
}
