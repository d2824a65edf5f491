import {
  baseServiceConfig,
  baseServiceEnv,
  ConfigError,
  numberMap,
  parseEnv,
  portVar,
  DEFAULT_PORTS,
  featuresClientEnv,
  type BaseServiceConfig,
} from '@recsys/service-kit';
import { sessionEnv, sessionSettings, type SessionSettings } from '@recsys/stage';
import type { IndexTarget } from '@recsys/vector-index';
import { z } from 'zod';
import { CHANNELS, type ChannelName } from './channels/channel.js';

export interface RetrievalConfig extends BaseServiceConfig, SessionSettings {
  featuresAddress: string;
  /** Per call to the feature service (user state, popular items). */
  featuresTimeoutMs: number;
  /**
   * The popular channel's list is kept in memory and refreshed in the background when older than this; 0 reads
   * it from the feature service on every request.
   */
  popularRefreshMs: number;
  /** Popular items kept per category filter (a request needing more reads through). */
  popularCacheItems: number;
  /** A channel that has not answered by then is reported as failed; the others still answer. */
  channelTimeoutMs: number;
  /** Trainer output root: <modelsDir>/two-tower/<version>/. */
  modelsDir: string;
  index: IndexTarget;
  /** How often a new index version is looked for; 0 never looks. */
  indexPollMs: number;
  /** HNSW search beam width (embedded: usearch expansion; Qdrant: hnsw_ef); undefined keeps the index's own. */
  indexExpansionSearch: number | undefined;
  /** The beam is at least this many candidates per result wanted; undefined keeps the library's DEFAULT_EXPANSION_PER_RESULT. */
  indexExpansionPerResult: number | undefined;
  /** Worker threads that run the embedded index's graph searches (0: on the event loop's thread). */
  indexSearchWorkers: number;
  quotas: Record<ChannelName, number>;
  defaultLimit: number;
  maxLimit: number;
  /** History entries read per request: the seen-item filter and item-to-item seeds draw on them. */
  historyLength: number;
  /** Recently viewed items whose neighbours the item-to-item channel looks up. */
  itemToItemSeeds: number;
  /** Weight of the k-th most recent seed is decay^k. */
  itemToItemDecay: number;
  /** Seeds whose neighbours the embedded index keeps (0: none); undefined keeps the library's DEFAULT_NEIGHBOUR_CACHE_ITEMS. */
  itemToItemCacheItems: number | undefined;
  /** Reciprocal-rank fusion constant: larger flattens the advantage of the first ranks. */
  fusionK: number;
  maxIdLength: number;
  /** Bounds the request's context items and filter ids. */
  maxListSize: number;
}

const positiveInt = z.coerce.number().int().positive();

const quotas = numberMap.transform((map, ctx) => {
  const out: Partial<Record<ChannelName, number>> = {};
  for (const [name, value] of Object.entries(map)) {
    if (!(CHANNELS as readonly string[]).includes(name) || !Number.isInteger(value) || value < 0) {
      ctx.addIssue({ code: 'custom', message: `"${name}=${value}": channels are ${CHANNELS.join(', ')}; quotas are whole numbers >= 0` });
      return z.NEVER;
    }
    out[name as ChannelName] = value;
  }
  return out;
});

export const DEFAULT_QUOTAS: Readonly<Record<ChannelName, number>> = { two_tower: 200, popular: 50, item_to_item: 100 };

export const retrievalEnv = {
  ...baseServiceEnv,
  GRPC_PORT: portVar(DEFAULT_PORTS.retrieval),
  ...featuresClientEnv,
  CHANNEL_TIMEOUT_MS: positiveInt.max(60000).default(500),
  MODELS_DIR: z.string({ error: 'required: the trainer output root (<dir>/two-tower/<version>/)' }).min(1),
  INDEX_BACKEND: z.enum(['embedded', 'qdrant']).default('embedded'),
  INDEX_DIR: z.string().min(1).optional(),
  QDRANT_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  QDRANT_API_KEY: z.string().optional(),
  QDRANT_COLLECTION: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, "letters, digits, '_' or '-', starting with a letter or digit")
    .default('items'),
  INDEX_POLL_MS: z.coerce.number().int().min(0).default(5000),
  INDEX_EXPANSION_SEARCH: positiveInt.max(100000).optional(),
  INDEX_EXPANSION_PER_RESULT: z.coerce.number().min(1).max(100).optional(),
  INDEX_SEARCH_WORKERS: z.coerce.number().int().min(0).max(16).default(0),
  CHANNEL_QUOTAS: quotas.default({}),
  DEFAULT_LIMIT: positiveInt.default(200),
  MAX_LIMIT: positiveInt.max(100000).default(1000),
  // The user tower runs one row per request: on the event loop's thread unless RETRIEVAL_SESSION_THREAD=worker.
  ...sessionEnv('RETRIEVAL', { thread: 'main' }),
  HISTORY_LENGTH: positiveInt.max(10000).default(50),
  POPULAR_REFRESH_MS: z.coerce.number().int().min(0).max(3_600_000).default(1000),
  POPULAR_CACHE_ITEMS: positiveInt.max(100000).default(1000),
  ITEM_TO_ITEM_SEEDS: positiveInt.max(100).default(5),
  ITEM_TO_ITEM_DECAY: z.coerce.number().gt(0).max(1).default(0.85),
  ITEM_TO_ITEM_CACHE_ITEMS: z.coerce.number().int().min(0).max(10_000_000).optional(),
  FUSION_K: z.coerce.number().positive().default(60),
  MAX_ID_LENGTH: positiveInt.max(4096).default(256),
  MAX_LIST_SIZE: positiveInt.max(100000).default(5000),
};

/** Variables an earlier release read, refused by name so that a deployment setting one learns its new name. */
const RENAMED: Readonly<Record<string, string>> = {
  EXECUTION_PROVIDERS: 'RETRIEVAL_EXECUTION_PROVIDERS',
  INTRA_OP_THREADS: 'RETRIEVAL_INTRA_OP_THREADS',
  CUDA_DEVICE_ID: 'RETRIEVAL_CUDA_DEVICE_ID',
};

export function loadRetrievalConfig(env: NodeJS.ProcessEnv = process.env): RetrievalConfig {
  for (const [old, renamed] of Object.entries(RENAMED))
    if (env[old] !== undefined) throw new ConfigError(old, `renamed to ${renamed} (the name every model stage's sessions use)`);
  const e = parseEnv(retrievalEnv, env);
  if (e.DEFAULT_LIMIT > e.MAX_LIMIT) throw new ConfigError('DEFAULT_LIMIT', `must not exceed MAX_LIMIT (${e.MAX_LIMIT})`);
  const quotas = { ...DEFAULT_QUOTAS, ...e.CHANNEL_QUOTAS };
  const tooLarge = CHANNELS.find((c) => quotas[c] > e.MAX_LIMIT);
  if (tooLarge) throw new ConfigError('CHANNEL_QUOTAS', `${tooLarge}=${quotas[tooLarge]} exceeds MAX_LIMIT (${e.MAX_LIMIT})`);
  let index: IndexTarget;
  if (e.INDEX_BACKEND === 'embedded') {
    if (!e.INDEX_DIR) throw new ConfigError('INDEX_DIR', 'required with INDEX_BACKEND=embedded (the directory recsys-index build writes)');
    index = { kind: 'embedded', root: e.INDEX_DIR };
  } else {
    if (!e.QDRANT_URL) throw new ConfigError('QDRANT_URL', 'required with INDEX_BACKEND=qdrant');
    index = {
      kind: 'qdrant',
      url: e.QDRANT_URL,
      collection: e.QDRANT_COLLECTION,
      ...(e.QDRANT_API_KEY ? { apiKey: e.QDRANT_API_KEY } : {}),
    };
  }
  return {
    ...baseServiceConfig(e),
    featuresAddress: e.FEATURES_ADDRESS,
    featuresTimeoutMs: e.FEATURES_TIMEOUT_MS,
    channelTimeoutMs: e.CHANNEL_TIMEOUT_MS,
    modelsDir: e.MODELS_DIR,
    index,
    indexPollMs: e.INDEX_POLL_MS,
    indexExpansionSearch: e.INDEX_EXPANSION_SEARCH,
    indexExpansionPerResult: e.INDEX_EXPANSION_PER_RESULT,
    indexSearchWorkers: e.INDEX_SEARCH_WORKERS,
    quotas,
    defaultLimit: e.DEFAULT_LIMIT,
    maxLimit: e.MAX_LIMIT,
    ...sessionSettings(e, 'RETRIEVAL'),
    historyLength: e.HISTORY_LENGTH,
    popularRefreshMs: e.POPULAR_REFRESH_MS,
    popularCacheItems: e.POPULAR_CACHE_ITEMS,
    itemToItemSeeds: e.ITEM_TO_ITEM_SEEDS,
    itemToItemDecay: e.ITEM_TO_ITEM_DECAY,
    itemToItemCacheItems: e.ITEM_TO_ITEM_CACHE_ITEMS,
    fusionK: e.FUSION_K,
    maxIdLength: e.MAX_ID_LENGTH,
    maxListSize: e.MAX_LIST_SIZE,
  };
}
