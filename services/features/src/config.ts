import {
  baseServiceConfig,
  baseServiceEnv,
  ConfigError,
  numberMap,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { common } from '@recsys/contracts';
import { z } from 'zod';
import {
  DEFAULT_ITEM_BUCKETS,
  DEFAULT_POPULARITY_SHARDS,
  MAX_ITEM_BUCKETS,
  MAX_POPULARITY_SHARDS,
  parseClusterNodes,
  type RedisClusterNodes,
} from './store/index.js';

export interface FeaturesConfig extends BaseServiceConfig {
  /** One Redis; unset (and no cluster): the in-memory store (laptop default). */
  redisUrl: string | undefined;
  /** A Redis Cluster's seed nodes; never set together with redisUrl. */
  redisCluster: RedisClusterNodes | undefined;
  /** Redis Cluster only: how many slots popularity is spread over. */
  redisClusterPopularityShards: number;
  /** Redis Cluster only: how many slot groups item features are spread over. */
  redisClusterItemBuckets: number;
  /** Prepended to every key, so several deployments can share one Redis database. */
  redisKeyPrefix: string;
  historyCap: number;
  historyDefaultLimit: number;
  maxBatchSize: number;
  maxIdLength: number;
  popularDefaultLimit: number;
  popularMaxLimit: number;
  popularityHalfLifeMs: number;
  dedupTtlMs: number;
  eventWeights: Partial<Record<number, number>>;
  historyEventTypes: ReadonlySet<number>;
  /** Event log (impressions, feedback) entries older than this are trimmed. */
  eventLogRetentionMs: number;
  /** How long after an answer feedback naming its request id is attributed to it (online metrics). */
  attributionWindowMs: number;
  /** Online metrics count positions below this as the top k (CTR@k). */
  onlineMetricsK: number;
}

const positiveInt = z.coerce.number().int().positive();

const eventTypeNames = Object.keys(common.EventType).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');

function eventTypeOf(name: string): number | undefined {
  const value = (common.EventType as unknown as Record<string, number>)[name.trim().toUpperCase()];
  return value === undefined || value === common.EventType.UNSPECIFIED ? undefined : value;
}

const eventWeights = numberMap.transform((map, ctx) => {
  const weights: Partial<Record<number, number>> = {};
  for (const [name, weight] of Object.entries(map)) {
    const type = eventTypeOf(name);
    if (type === undefined || weight < 0) {
      ctx.addIssue({ code: 'custom', message: `"${name}=${weight}": event types are ${eventTypeNames.join(', ')}; weights are >= 0` });
      return z.NEVER;
    }
    weights[type] = weight;
  }
  return weights;
});

const eventTypeSet = z.string().transform((text, ctx) => {
  const types = new Set<number>();
  for (const name of text.split(',').filter((n) => n.trim())) {
    const type = eventTypeOf(name);
    if (type === undefined) {
      ctx.addIssue({ code: 'custom', message: `unknown event type "${name}"; expected some of ${eventTypeNames.join(', ')}` });
      return z.NEVER;
    }
    types.add(type);
  }
  return types;
});

export const featuresEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.features),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((text, ctx) => {
      try {
        return parseClusterNodes(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  REDIS_CLUSTER_POPULARITY_SHARDS: positiveInt.max(MAX_POPULARITY_SHARDS).default(DEFAULT_POPULARITY_SHARDS),
  REDIS_CLUSTER_ITEM_BUCKETS: positiveInt.max(MAX_ITEM_BUCKETS).default(DEFAULT_ITEM_BUCKETS),
  REDIS_KEY_PREFIX: z
    .string()
    .max(64)
    .regex(/^[\w:.-]*$/, 'letters, digits, _ : . - only')
    .default(''),
  HISTORY_CAP: positiveInt.max(10000).default(200),
  HISTORY_DEFAULT_LIMIT: positiveInt.default(50),
  MAX_BATCH_SIZE: positiveInt.max(100000).default(5000),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
  POPULAR_DEFAULT_LIMIT: positiveInt.default(100),
  POPULAR_MAX_LIMIT: positiveInt.max(100000).default(10000),
  POPULARITY_HALF_LIFE_HOURS: z.coerce.number().positive().default(24),
  DEDUP_TTL_HOURS: z.coerce.number().positive().default(72),
  EVENT_WEIGHTS: eventWeights.default({
    [common.EventType.VIEW]: 1,
    [common.EventType.CLICK]: 1,
    [common.EventType.ADD_TO_CART]: 2,
    [common.EventType.PURCHASE]: 4,
    [common.EventType.LIKE]: 2,
  }),
  HISTORY_EVENT_TYPES: eventTypeSet.default(
    new Set([
      common.EventType.VIEW,
      common.EventType.CLICK,
      common.EventType.ADD_TO_CART,
      common.EventType.PURCHASE,
      common.EventType.LIKE,
    ]),
  ),
  EVENT_LOG_RETENTION_HOURS: z.coerce.number().positive().default(168),
  ATTRIBUTION_WINDOW_HOURS: z.coerce.number().positive().default(1),
  ONLINE_METRICS_K: positiveInt.max(1000).default(10),
};

export function loadFeaturesConfig(env: NodeJS.ProcessEnv = process.env): FeaturesConfig {
  const e = parseEnv(featuresEnv, env);
  if (e.REDIS_URL && e.REDIS_CLUSTER_NODES) {
    throw new ConfigError('REDIS_CLUSTER_NODES', 'set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both');
  }
  for (const variable of ['REDIS_CLUSTER_POPULARITY_SHARDS', 'REDIS_CLUSTER_ITEM_BUCKETS']) {
    if (env[variable] && !e.REDIS_CLUSTER_NODES) throw new ConfigError(variable, 'applies only to a Redis Cluster (REDIS_CLUSTER_NODES)');
  }
  if (e.HISTORY_DEFAULT_LIMIT > e.HISTORY_CAP) {
    throw new ConfigError('HISTORY_DEFAULT_LIMIT', `must not exceed HISTORY_CAP (${e.HISTORY_CAP})`);
  }
  if (e.POPULAR_DEFAULT_LIMIT > e.POPULAR_MAX_LIMIT) {
    throw new ConfigError('POPULAR_DEFAULT_LIMIT', `must not exceed POPULAR_MAX_LIMIT (${e.POPULAR_MAX_LIMIT})`);
  }
  return {
    ...baseServiceConfig(e),
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER_NODES,
    redisClusterPopularityShards: e.REDIS_CLUSTER_POPULARITY_SHARDS,
    redisClusterItemBuckets: e.REDIS_CLUSTER_ITEM_BUCKETS,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    historyCap: e.HISTORY_CAP,
    historyDefaultLimit: e.HISTORY_DEFAULT_LIMIT,
    maxBatchSize: e.MAX_BATCH_SIZE,
    maxIdLength: e.MAX_ID_LENGTH,
    popularDefaultLimit: e.POPULAR_DEFAULT_LIMIT,
    popularMaxLimit: e.POPULAR_MAX_LIMIT,
    popularityHalfLifeMs: e.POPULARITY_HALF_LIFE_HOURS * 3600_000,
    dedupTtlMs: e.DEDUP_TTL_HOURS * 3600_000,
    eventWeights: e.EVENT_WEIGHTS,
    historyEventTypes: e.HISTORY_EVENT_TYPES,
    eventLogRetentionMs: Math.max(1, Math.round(e.EVENT_LOG_RETENTION_HOURS * 3600_000)),
    attributionWindowMs: Math.max(1, Math.round(e.ATTRIBUTION_WINDOW_HOURS * 3600_000)),
    onlineMetricsK: e.ONLINE_METRICS_K,
  };
}
