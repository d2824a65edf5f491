import {
  baseServiceConfig,
  baseServiceEnv,
  ConfigError,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  featuresClientEnv,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { z } from 'zod';
import { defaultRules, loadRulesFile, RulesFileError, type RulesConfig } from './rules-file.js';

export interface RerankingConfig extends BaseServiceConfig {
  featuresAddress: string;
  /** One feature-service try's timeout. */
  featuresTimeoutMs: number;
  featuresAttempts: number;
  featuresBackoffMs: number;
  /** Time kept back from a request's deadline for the rules after the feature reads. */
  deadlineReserveMs: number;
  /** The answer's length when a request's limit is 0 or less. */
  defaultLimit: number;
  maxLimit: number;
  maxCandidates: number;
  maxIdLength: number;
  rules: RulesConfig;
}

const positiveInt = z.coerce.number().int().positive();

export const rerankingEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.reranking),
  ...featuresClientEnv,
  FEATURES_ATTEMPTS: positiveInt.max(5).default(2),
  FEATURES_RETRY_BACKOFF_MS: z.coerce.number().int().min(0).max(1000).default(10),
  DEADLINE_RESERVE_MS: z.coerce.number().int().min(0).max(10000).default(10),
  /** YAML or JSON; unset: the built-in default rules (see the README). */
  RERANKING_RULES_FILE: z.string().optional(),
  DEFAULT_LIMIT: positiveInt.default(20),
  MAX_LIMIT: positiveInt.max(100000).default(500),
  MAX_CANDIDATES: positiveInt.max(100000).default(2000),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
};

/** The environment and the rules file, validated once; the first problem is named (a variable, or the rule's field). */
export function loadRerankingConfig(env: NodeJS.ProcessEnv = process.env): RerankingConfig {
  const e = parseEnv(rerankingEnv, env);
  if (e.DEFAULT_LIMIT > e.MAX_LIMIT) throw new ConfigError('DEFAULT_LIMIT', `must not exceed MAX_LIMIT (${e.MAX_LIMIT})`);
  let rules: RulesConfig;
  try {
    rules = e.RERANKING_RULES_FILE ? loadRulesFile(e.RERANKING_RULES_FILE) : defaultRules();
  } catch (error) {
    if (error instanceof RulesFileError) throw new ConfigError('RERANKING_RULES_FILE', error.message);
    throw error;
  }
  return {
    ...baseServiceConfig(e),
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    featuresAttempts: e.FEATURES_ATTEMPTS,
    featuresBackoffMs: e.FEATURES_RETRY_BACKOFF_MS,
    deadlineReserveMs: e.DEADLINE_RESERVE_MS,
    defaultLimit: e.DEFAULT_LIMIT,
    maxLimit: e.MAX_LIMIT,
    maxCandidates: e.MAX_CANDIDATES,
    maxIdLength: e.MAX_ID_LENGTH,
    rules,
  };
}
