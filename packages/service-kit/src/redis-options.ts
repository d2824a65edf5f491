// The one home of the Redis client settings every service uses (the feature store, the gateway's shared rate limiter).
// Plain values typed here, so service-kit needs no ioredis: the objects are ioredis RedisOptions as they stand.

/** How long one connection attempt to Redis may take, unless a caller says otherwise. */
export const REDIS_CONNECT_TIMEOUT_MS = 2000;
/** How long a command may wait for its answer, unless a caller says otherwise. */
export const REDIS_COMMAND_TIMEOUT_MS = 2000;

/**
 * Wait before the next reconnect to a Redis (or cluster) that went away: 100 ms more per failed try, at most 500 ms. A 2 s
 * cap made test:resilience's recovery after a 3 s Redis outage 2.3 s (the wait before the try that finds Redis back,
 * then the gateway's circuit probe); a reconnect try to a server that is down costs next to nothing.
 */
export function redisReconnectDelayMs(attempts: number): number {
  return Math.min(attempts * 100, 500);
}

export interface RedisClientSettings {
  /** Default REDIS_COMMAND_TIMEOUT_MS. */
  commandTimeoutMs?: number | undefined;
  /** Default REDIS_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number | undefined;
  /** Tries again of a command whose connection dropped before the answer (default 1; 0 for a caller that fails open). */
  retriesPerRequest?: number | undefined;
}

/** ioredis options (a subset of its RedisOptions) that fail fast while Redis is away and reconnect by themselves. */
export interface FailFastRedisOptions {
  enableOfflineQueue: false;
  maxRetriesPerRequest: number;
  retryStrategy: (attempts: number) => number;
  lazyConnect: false;
  connectTimeout: number;
  commandTimeout: number;
}

/**
 * Client settings that fail fast while Redis is away (no offline queue: a call then fails at once; few retries) and keep
 * reconnecting forever with capped backoff (redisReconnectDelayMs), so the client recovers by itself when Redis is back.
 */
export function redisClientOptions(settings: RedisClientSettings = {}): FailFastRedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: settings.retriesPerRequest ?? 1,
    retryStrategy: redisReconnectDelayMs,
    lazyConnect: false,
    connectTimeout: settings.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: settings.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS,
  };
}
