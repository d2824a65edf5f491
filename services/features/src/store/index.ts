import type { FeatureStore } from './feature-store.js';
import { MemoryFeatureStore, type MemoryFeatureStoreOptions } from './memory-feature-store.js';
import type { RedisClusterNodes } from './redis-cluster-nodes.js';
import { RedisFeatureStore, type RedisFeatureStoreOptions } from './redis-feature-store.js';

export * from './feature-store.js';
export * from './event-log.js';
export { MemoryFeatureStore, type MemoryFeatureStoreOptions } from './memory-feature-store.js';
export {
  DEFAULT_ITEM_BUCKETS,
  DEFAULT_POPULARITY_SHARDS,
  RedisFeatureStore,
  redisClusterOptions,
  type RedisFeatureStoreOptions,
} from './redis-feature-store.js';
export { describeClusterNodes, parseClusterNodes, type RedisClusterNodes } from './redis-cluster-nodes.js';
export {
  clusterKeyLayout,
  hashTag,
  MAX_ITEM_BUCKETS,
  MAX_POPULARITY_SHARDS,
  plainKeyLayout,
  stableHash,
  type ClusterKeyCounts,
  type RedisKeyLayout,
} from './redis-keys.js';
export { POPULARITY_LANDMARK_MS, MAX_FUTURE_SKEW_MS } from './popularity-decay.js';

/** Where the features live: one Redis (a URL), a Redis Cluster (seed nodes), or neither (in memory). */
export interface FeatureStoreTarget {
  redisUrl?: string | undefined;
  redisCluster?: RedisClusterNodes | undefined;
}

/**
 * Redis when a URL is given, a Redis Cluster when seed nodes are, the embedded in-memory store
 * otherwise. With Redis it waits for the first connection attempt but does not fail when Redis is
 * down: the store reports unavailable (ping rejects with StoreUnavailableError) until Redis comes
 * up, then recovers by itself.
 */
export async function createFeatureStore(
  target: FeatureStoreTarget,
  options: RedisFeatureStoreOptions & MemoryFeatureStoreOptions,
): Promise<FeatureStore> {
  if (target.redisUrl && target.redisCluster) throw new RangeError('give a Redis URL or Redis Cluster nodes, not both');
  if (target.redisCluster) return RedisFeatureStore.connectCluster(target.redisCluster, options);
  if (target.redisUrl) return RedisFeatureStore.connect(target.redisUrl, options);
  return new MemoryFeatureStore(options);
}
