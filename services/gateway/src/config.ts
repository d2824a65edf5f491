import {
  addressVar,
  baseServiceConfig,
  baseServiceEnv,
  booleanVar,
  ConfigError,
  numberMap,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  defaultAddress,
  featuresClientEnv,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { z } from 'zod';
import type { ImpressionLogConfig } from './impression-log.js';
import type { AdmissionConfig } from './admission.js';

/** The downstream stages the gateway calls, in the order a request runs them, by the name used in logs, metrics and degradation reports. */
export const STAGE_NAMES = ['retrieval', 'preranking', 'ranking', 'reranking'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface AccessConfig {
  /** Explicitly off (AUTH_DISABLED=true) for local use only; otherwise at least one key is required. */
  authDisabled: boolean;
  /** `name:key` pairs from API_KEYS; API_KEYS_FILE adds more (a file of lines or a directory of files, as a Kubernetes Secret mounts them). */
  apiKeys: string | undefined;
  apiKeysFile: string | undefined;
  /** How often API_KEYS_FILE is checked for rotated keys; 0 never (SIGHUP still reloads). */
  apiKeysReloadMs: number;
  /** Sustained requests per second per key (token bucket refill); 0 turns rate limiting off. */
  rateLimitPerSecond: number;
  /** Bucket size: requests a key may send at once. */
  rateLimitBurst: number;
  /** Redis URL of the limiter shared by every gateway replica; unset: each process limits on its own (in memory). */
  rateLimitRedisUrl?: string | undefined;
  /** Allowed CORS origins; empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Largest request body accepted, in bytes (413 above it). */
  maxBodyBytes: number;
}

export interface LimitsConfig {
  defaultK: number;
  maxK: number;
  maxContextItems: number;
  maxFilterValues: number;
  maxFeedbackEvents: number;
  maxIdLength: number;
  maxAttributes: number;
}

export interface BudgetConfig {
  /** The whole request's budget when the request sets none. */
  defaultMs: number;
  /** A request may lower its budget down to minMs, never raise it above maxMs. */
  minMs: number;
  maxMs: number;
  /** Kept back from the budget for the gateway's own work (merging, answering). */
  reserveMs: number;
  /** A stage with less than this left is skipped (BUDGET_EXHAUSTED) rather than called. */
  minStageMs: number;
  /** Relative shares of the budget; a stage's deadline is its share of what is left over the stages still to run. */
  shares: Record<StageName, number>;
}

/** Retrieval channels the gateway sizes per request, as fractions of the retrieved count. */
export const RETRIEVAL_CHANNELS = ['two_tower', 'popular', 'item_to_item'] as const;
export type RetrievalChannel = (typeof RETRIEVAL_CHANNELS)[number];

export interface AdaptiveConfig {
  enabled: boolean;
  /** Candidates asked of retrieval (and pre-ranked), at most and at least. */
  retrieveMax: number;
  retrieveMin: number;
  /** Candidates kept by pre-ranking for ranking, at most and at least. */
  rankMax: number;
  rankMin: number;
  /** The percentile of recent stage latencies compared with its target. */
  percentile: number;
  /** Latency targets per stage, ms: above it the counts shrink, well under it they grow back. */
  targetMs: Record<StageName, number>;
  /** Recent calls per stage the percentile is taken over. */
  window: number;
  /** Each channel's quota as a fraction of the retrieved count, so the channels shrink and grow with it. */
  channelShares: Record<RetrievalChannel, number>;
}

export interface GatewayConfig extends BaseServiceConfig {
  httpHost: string;
  /** 0 picks a free port; -1 turns the REST API off. */
  httpPort: number;
  /** Longest time to receive a whole request (headers and body): a slow-loris client is cut off with 408. */
  httpRequestTimeoutMs: number;
  addresses: Record<StageName | 'features', string>;
  /** Feedback writes, the user read and the popular-items fallback. */
  featuresTimeoutMs: number;
  /**
   * History entries of the one user read each request makes for every stage (passed down as user_state); a stage
   * that needs more reads the user itself. 0 turns the read off: every stage reads the user on its own.
   */
  userHistoryLimit: number;
  budget: BudgetConfig;
  adaptive: AdaptiveConfig;
  access: AccessConfig;
  /** Requests worked on at once, queued, and how long they may queue before being shed (429 / RESOURCE_EXHAUSTED). */
  admission: AdmissionConfig;
  limits: LimitsConfig;
  /** How often the popular-items fallback list is refreshed from the feature service. */
  popularRefreshMs: number;
  /** Ranked candidates handed to re-ranking: max(k × factor, min) of the best, the pool its rules pick from. */
  rerankPool: { factor: number; min: number };
  /** Per stage: consecutive failures (down, or late with at least its latency target) that skip it for openMs. */
  breaker: { failures: number; openMs: number; minFailingMs: number };
  /** "answered with fallbacks" lines per stage and cause per window; what is left out is summed in one line per window. */
  degradedLog: { perWindow: number; windowMs: number };
  /** Served answers sent to the feature service's event log, in batches off the request's path. */
  impressionLog: ImpressionLogConfig;
}

const positiveInt = z.coerce.number().int().positive();

const channelShares = numberMap.transform((map, ctx) => {
  const out: Record<RetrievalChannel, number> = { two_tower: 0, popular: 0, item_to_item: 0 };
  for (const [name, value] of Object.entries(map)) {
    if (!(RETRIEVAL_CHANNELS as readonly string[]).includes(name) || !(value >= 0 && value <= 1)) {
      ctx.addIssue({ code: 'custom', message: `"${name}=${value}": channels are ${RETRIEVAL_CHANNELS.join(', ')}; shares lie in 0..1` });
      return z.NEVER;
    }
    out[name as RetrievalChannel] = value;
  }
  if (Object.values(out).every((v) => v === 0)) {
    ctx.addIssue({ code: 'custom', message: 'at least one channel needs a share above 0' });
    return z.NEVER;
  }
  return out;
});
const share = z.coerce.number().positive().max(100);

export const gatewayEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.gateway),
  HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  HTTP_PORT: z.coerce.number().int().min(-1).max(65535).default(DEFAULT_PORTS.http),
  HTTP_REQUEST_TIMEOUT_MS: positiveInt.min(100).max(600_000).default(10_000),
  ...featuresClientEnv,
  RETRIEVAL_ADDRESS: addressVar(defaultAddress('retrieval')),
  PRERANKING_ADDRESS: addressVar(defaultAddress('preranking')),
  RANKING_ADDRESS: addressVar(defaultAddress('ranking')),
  RERANKING_ADDRESS: addressVar(defaultAddress('reranking')),
  USER_HISTORY_LIMIT: z.coerce.number().int().min(0).max(10000).default(100),
  BUDGET_DEFAULT_MS: positiveInt.max(60000).default(250),
  BUDGET_MIN_MS: positiveInt.max(60000).default(20),
  BUDGET_MAX_MS: positiveInt.max(60000).default(1000),
  BUDGET_RESERVE_MS: z.coerce.number().int().min(0).max(10000).default(5),
  MIN_STAGE_MS: positiveInt.max(10000).default(3),
  SHARE_RETRIEVAL: share.default(30),
  SHARE_PRERANKING: share.default(25),
  SHARE_RANKING: share.default(25),
  SHARE_RERANKING: share.default(20),
  ADAPTIVE_CANDIDATES: booleanVar.default(true),
  RETRIEVE_MAX: positiveInt.max(100000).default(1000),
  RETRIEVE_MIN: positiveInt.max(100000).default(200),
  RANK_MAX: positiveInt.max(100000).default(300),
  RANK_MIN: positiveInt.max(100000).default(60),
  ADAPTIVE_PERCENTILE: z.coerce.number().min(50).max(99.9).default(95),
  ADAPTIVE_WINDOW: positiveInt.min(10).max(100000).default(200),
  CHANNEL_SHARES: channelShares.default({ two_tower: 0.6, popular: 0.15, item_to_item: 0.25 }),
  TARGET_RETRIEVAL_MS: positiveInt.default(60),
  TARGET_PRERANKING_MS: positiveInt.default(25),
  TARGET_RANKING_MS: positiveInt.default(60),
  TARGET_RERANKING_MS: positiveInt.default(25),
  AUTH_DISABLED: booleanVar.default(false),
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().optional(),
  API_KEYS_RELOAD_MS: z.coerce.number().int().min(0).max(86_400_000).default(10000),
  RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).max(1e6).default(500),
  RATE_LIMIT_BURST: positiveInt.max(1e6).default(1000),
  RATE_LIMIT_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
    .optional(),
  ADMISSION_MAX_IN_FLIGHT: z.coerce.number().int().min(0).max(100000).default(32),
  ADMISSION_ADAPTIVE: booleanVar.default(true),
  ADMISSION_MIN_IN_FLIGHT: positiveInt.max(100000).default(4),
  /** Unset: ADMISSION_TARGET_SHARE of BUDGET_DEFAULT_MS (admissionTargetMs). */
  ADMISSION_TARGET_MS: positiveInt.max(60000).optional(),
  ADMISSION_MAX_QUEUE: z.coerce.number().int().min(0).max(100000).default(64),
  ADMISSION_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(0).max(60000).default(50),
  ADMISSION_MAX_EVENT_LOOP_LAG_MS: z.coerce.number().int().min(0).max(60000).default(0),
  CORS_ORIGINS: z.string().optional(),
  MAX_BODY_BYTES: positiveInt.max(64 * 1024 * 1024).default(256 * 1024),
  DEFAULT_K: positiveInt.default(20),
  MAX_K: positiveInt.max(10000).default(200),
  MAX_CONTEXT_ITEMS: positiveInt.max(10000).default(100),
  MAX_FILTER_VALUES: positiveInt.max(100000).default(1000),
  MAX_FEEDBACK_EVENTS: positiveInt.max(100000).default(1000),
  MAX_ID_LENGTH: positiveInt.min(36).max(4096).default(256),
  MAX_ATTRIBUTES: positiveInt.max(1000).default(32),
  POPULAR_REFRESH_MS: positiveInt.default(10000),
  RERANK_POOL_FACTOR: positiveInt.max(1000).default(5),
  RERANK_POOL_MIN: positiveInt.max(100000).default(100),
  BREAKER_FAILURES: z.coerce.number().int().min(0).max(1000).default(5),
  // 1 s: a stage back from a restart gets its next probe within a second (test:resilience's 2 s recovery target; 2 s
  // before, which with the reconnect made recovery 2-4 s).
  BREAKER_OPEN_MS: positiveInt.max(600000).default(1000),
  BREAKER_MIN_FAILING_MS: z.coerce.number().int().min(0).max(600000).default(1000),
  DEGRADED_LOG_LIMIT: z.coerce.number().int().min(0).max(100000).default(10),
  DEGRADED_LOG_WINDOW_MS: positiveInt.max(3_600_000).default(60000),
  IMPRESSION_LOG: booleanVar.default(true),
  IMPRESSION_LOG_FLUSH_MS: positiveInt.max(60000).default(200),
  IMPRESSION_LOG_BATCH: positiveInt.max(100000).default(500),
  IMPRESSION_LOG_MAX_QUEUE: positiveInt.max(10_000_000).default(20000),
  IMPRESSION_LOG_TIMEOUT_MS: positiveInt.max(60000).default(2000),
};

/**
 * The share of the request budget that the adaptive in-flight limit steers the admitted requests' p90 to, when
 * ADMISSION_TARGET_MS is not set. A 100 ms window holds too few answers for a p99, so the p90 is steered, and the target
 * leaves the tail its room under the budget: the answers that reach the budget are cut there with a fallback and then
 * still wait for the CPU before their client reads them. Past saturation on the 2-core machine (the overload part of
 * pnpm test:resilience, 1.5-3× capacity, two runs each), steering to 150 ms of the 250 ms budget answered 6-12% of
 * requests with a fallback at an answered p99 of 236-267 ms; 110 ms (this share) 1-4% at 192-230 ms, answering about
 * as many per second.
 */
export const ADMISSION_TARGET_SHARE = 0.44;

/** ADMISSION_TARGET_MS's default: ADMISSION_TARGET_SHARE of the default request budget (110 ms of 250). */
export function admissionTargetMs(budgetDefaultMs: number): number {
  return Math.max(1, Math.round(budgetDefaultMs * ADMISSION_TARGET_SHARE));
}

/** The environment, validated once; the first problem is named. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const e = parseEnv(gatewayEnv, env);
  if (e.BUDGET_MIN_MS > e.BUDGET_MAX_MS) throw new ConfigError('BUDGET_MIN_MS', `must not exceed BUDGET_MAX_MS (${e.BUDGET_MAX_MS})`);
  if (e.BUDGET_DEFAULT_MS < e.BUDGET_MIN_MS || e.BUDGET_DEFAULT_MS > e.BUDGET_MAX_MS)
    throw new ConfigError('BUDGET_DEFAULT_MS', `must lie within BUDGET_MIN_MS..BUDGET_MAX_MS (${e.BUDGET_MIN_MS}..${e.BUDGET_MAX_MS})`);
  if (e.RETRIEVE_MIN > e.RETRIEVE_MAX) throw new ConfigError('RETRIEVE_MIN', `must not exceed RETRIEVE_MAX (${e.RETRIEVE_MAX})`);
  if (e.RANK_MIN > e.RANK_MAX) throw new ConfigError('RANK_MIN', `must not exceed RANK_MAX (${e.RANK_MAX})`);
  if (e.RANK_MAX > e.RETRIEVE_MAX) throw new ConfigError('RANK_MAX', `must not exceed RETRIEVE_MAX (${e.RETRIEVE_MAX})`);
  if (e.DEFAULT_K > e.MAX_K) throw new ConfigError('DEFAULT_K', `must not exceed MAX_K (${e.MAX_K})`);
  if (!e.AUTH_DISABLED && !e.API_KEYS && !e.API_KEYS_FILE)
    throw new ConfigError('API_KEYS', 'no API key configured: set API_KEYS or API_KEYS_FILE, or AUTH_DISABLED=true for local use only');
  return {
    ...baseServiceConfig(e),
    httpHost: e.HTTP_HOST,
    httpPort: e.HTTP_PORT,
    httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
    addresses: {
      features: e.FEATURES_ADDRESS,
      retrieval: e.RETRIEVAL_ADDRESS,
      preranking: e.PRERANKING_ADDRESS,
      ranking: e.RANKING_ADDRESS,
      reranking: e.RERANKING_ADDRESS,
    },
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    userHistoryLimit: e.USER_HISTORY_LIMIT,
    budget: {
      defaultMs: e.BUDGET_DEFAULT_MS,
      minMs: e.BUDGET_MIN_MS,
      maxMs: e.BUDGET_MAX_MS,
      reserveMs: e.BUDGET_RESERVE_MS,
      minStageMs: e.MIN_STAGE_MS,
      shares: { retrieval: e.SHARE_RETRIEVAL, preranking: e.SHARE_PRERANKING, ranking: e.SHARE_RANKING, reranking: e.SHARE_RERANKING },
    },
    adaptive: {
      enabled: e.ADAPTIVE_CANDIDATES,
      retrieveMax: e.RETRIEVE_MAX,
      retrieveMin: e.RETRIEVE_MIN,
      rankMax: e.RANK_MAX,
      rankMin: e.RANK_MIN,
      percentile: e.ADAPTIVE_PERCENTILE,
      window: e.ADAPTIVE_WINDOW,
      channelShares: e.CHANNEL_SHARES,
      targetMs: {
        retrieval: e.TARGET_RETRIEVAL_MS,
        preranking: e.TARGET_PRERANKING_MS,
        ranking: e.TARGET_RANKING_MS,
        reranking: e.TARGET_RERANKING_MS,
      },
    },
    access: {
      authDisabled: e.AUTH_DISABLED,
      apiKeys: e.API_KEYS,
      apiKeysFile: e.API_KEYS_FILE,
      apiKeysReloadMs: e.API_KEYS_RELOAD_MS,
      rateLimitPerSecond: e.RATE_LIMIT_PER_SECOND,
      rateLimitBurst: e.RATE_LIMIT_BURST,
      rateLimitRedisUrl: e.RATE_LIMIT_REDIS_URL,
      corsOrigins: (e.CORS_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      maxBodyBytes: e.MAX_BODY_BYTES,
    },
    admission: {
      maxInFlight: e.ADMISSION_MAX_IN_FLIGHT,
      adaptive: e.ADMISSION_ADAPTIVE,
      minInFlight: e.ADMISSION_MIN_IN_FLIGHT,
      targetMs: e.ADMISSION_TARGET_MS ?? admissionTargetMs(e.BUDGET_DEFAULT_MS),
      maxQueue: e.ADMISSION_MAX_QUEUE,
      queueTimeoutMs: e.ADMISSION_QUEUE_TIMEOUT_MS,
      maxEventLoopLagMs: e.ADMISSION_MAX_EVENT_LOOP_LAG_MS,
    },
    limits: {
      defaultK: e.DEFAULT_K,
      maxK: e.MAX_K,
      maxContextItems: e.MAX_CONTEXT_ITEMS,
      maxFilterValues: e.MAX_FILTER_VALUES,
      maxFeedbackEvents: e.MAX_FEEDBACK_EVENTS,
      maxIdLength: e.MAX_ID_LENGTH,
      maxAttributes: e.MAX_ATTRIBUTES,
    },
    popularRefreshMs: e.POPULAR_REFRESH_MS,
    rerankPool: { factor: e.RERANK_POOL_FACTOR, min: e.RERANK_POOL_MIN },
    breaker: { failures: e.BREAKER_FAILURES, openMs: e.BREAKER_OPEN_MS, minFailingMs: e.BREAKER_MIN_FAILING_MS },
    degradedLog: { perWindow: e.DEGRADED_LOG_LIMIT, windowMs: e.DEGRADED_LOG_WINDOW_MS },
    impressionLog: {
      enabled: e.IMPRESSION_LOG,
      flushMs: e.IMPRESSION_LOG_FLUSH_MS,
      batch: e.IMPRESSION_LOG_BATCH,
      maxQueue: e.IMPRESSION_LOG_MAX_QUEUE,
      timeoutMs: e.IMPRESSION_LOG_TIMEOUT_MS,
    },
  };
}
