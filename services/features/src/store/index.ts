import type { FeatureStore } from './feature-store.js';
import { MemoryFeatureStore, type MemoryFeatureStoreOptions } from './memory-feature-store.js';
import { RedisFeatureStore, type RedisFeatureStoreOptions } from './redis-feature-store.js';

export * from './feature-store.js';
export { MemoryFeatureStore, type MemoryFeatureStoreOptions } from './memory-feature-store.js';
export { RedisFeatureStore, redisClientOptions, type RedisFeatureStoreOptions } from './redis-feature-store.js';
export { POPULARITY_LANDMARK_MS, MAX_FUTURE_SKEW_MS } from './popularity-decay.js';

/**
 * Redis when a URL is given, the embedded in-memory store otherwise. With Redis it waits for the
 * first connection attempt but does not fail when Redis is down: the store reports unavailable
 * (ping rejects with StoreUnavailableError) until Redis comes up, then recovers by itself.
 */
export async function createFeatureStore(
  redisUrl: string | undefined,
  options: RedisFeatureStoreOptions & MemoryFeatureStoreOptions,
): Promise<FeatureStore> {
  if (redisUrl) return RedisFeatureStore.connect(redisUrl, options);
  return new MemoryFeatureStore(options);
}
