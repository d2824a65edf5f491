import { REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS, redisClientOptions, redisReconnectDelayMs } from './redis-options.js';

describe('redisClientOptions', () => {
  it('fails fast while Redis is away and reconnects every 500 ms at most, with the caller timeouts and retries', () => {
    expect([1, 3, 5, 20, 1000].map(redisReconnectDelayMs)).toEqual([100, 300, 500, 500, 500]);
    expect(redisClientOptions()).toEqual({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: redisReconnectDelayMs,
      lazyConnect: false,
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    });
    expect(redisClientOptions({ commandTimeoutMs: 100, connectTimeoutMs: 300, retriesPerRequest: 0 })).toMatchObject({
      maxRetriesPerRequest: 0,
      connectTimeout: 300,
      commandTimeout: 100,
      retryStrategy: redisReconnectDelayMs,
    });
  });
});
