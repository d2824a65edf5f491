import {
  baseServiceConfig,
  baseServiceEnv,
  ConfigError,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { modelStageConfig, modelStageEnv, sessionEnv, type ModelStageConfig } from '@recsys/stage';
import { z } from 'zod';

export interface PrerankingConfig extends BaseServiceConfig, ModelStageConfig {
  /** Candidates kept when a request's limit is 0. */
  defaultLimit: number;
  maxLimit: number;
  /** Candidates scored per request at most (all in one run). */
  maxCandidates: number;
}

const positiveInt = z.coerce.number().int().positive();

export const prerankingEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.preranking),
  ...modelStageEnv,
  ...sessionEnv('PRERANKING'),
  PRERANKING_DEFAULT_LIMIT: positiveInt.default(200),
  PRERANKING_MAX_LIMIT: positiveInt.max(100_000).default(1000),
  PRERANKING_MAX_CANDIDATES: positiveInt.max(100_000).default(5000),
};

export function loadPrerankingConfig(env: NodeJS.ProcessEnv = process.env): PrerankingConfig {
  const e = parseEnv(prerankingEnv, env);
  if (e.PRERANKING_DEFAULT_LIMIT > e.PRERANKING_MAX_LIMIT) {
    throw new ConfigError('PRERANKING_DEFAULT_LIMIT', `must not exceed PRERANKING_MAX_LIMIT (${e.PRERANKING_MAX_LIMIT})`);
  }
  return {
    ...baseServiceConfig(e),
    ...modelStageConfig(e, 'PRERANKING'),
    defaultLimit: e.PRERANKING_DEFAULT_LIMIT,
    maxLimit: e.PRERANKING_MAX_LIMIT,
    maxCandidates: e.PRERANKING_MAX_CANDIDATES,
  };
}
