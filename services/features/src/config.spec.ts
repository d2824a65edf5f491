import { common } from '@recsys/contracts';
import { loadFeaturesConfig } from './config.js';

describe('loadFeaturesConfig', () => {
  it('applies the defaults: in-memory store, port 15051', () => {
    const config = loadFeaturesConfig({});
    expect(config).toMatchObject({
      redisUrl: undefined,
      redisCluster: undefined,
      redisClusterPopularityShards: 16,
      grpcPort: 15051,
      historyCap: 200,
      maxBatchSize: 5000,
      metricsPort: -1,
      eventLogRetentionMs: 168 * 3_600_000,
      attributionWindowMs: 3_600_000,
      onlineMetricsK: 10,
    });
    expect(config.eventWeights[common.EventType.PURCHASE]).toBe(4);
    expect(config.historyEventTypes.has(common.EventType.IMPRESSION)).toBe(false);
  });

  it('parses event weights and history types by name', () => {
    const config = loadFeaturesConfig({ EVENT_WEIGHTS: 'view=0.5, purchase=10', HISTORY_EVENT_TYPES: 'PURCHASE' });
    expect(config.eventWeights).toEqual({ [common.EventType.VIEW]: 0.5, [common.EventType.PURCHASE]: 10 });
    expect([...config.historyEventTypes]).toEqual([common.EventType.PURCHASE]);
  });

  it.each([
    [{ EVENT_LOG_RETENTION_HOURS: '0' }, 'invalid configuration: EVENT_LOG_RETENTION_HOURS'],
    [{ ATTRIBUTION_WINDOW_HOURS: 'soon' }, 'invalid configuration: ATTRIBUTION_WINDOW_HOURS'],
    [{ ONLINE_METRICS_K: '0' }, 'invalid configuration: ONLINE_METRICS_K'],
    [{ REDIS_URL: 'localhost:6379' }, 'invalid configuration: REDIS_URL: must be a redis:// or rediss:// URL'],
    [{ GRPC_PORT: '70000' }, 'invalid configuration: GRPC_PORT'],
    [
      { REDIS_CLUSTER_NODES: 'a:1,b' },
      'invalid configuration: REDIS_CLUSTER_NODES: "b" is not host:port or redis://[user:password@]host:port',
    ],
    [{ REDIS_CLUSTER_NODES: 'a:0' }, 'invalid configuration: REDIS_CLUSTER_NODES: "a:0": port must be 1 to 65535'],
    [{ REDIS_CLUSTER_NODES: ' , ' }, 'invalid configuration: REDIS_CLUSTER_NODES: expected host:port entries separated by commas'],
    [{ REDIS_CLUSTER_NODES: 'a:1,a:1' }, 'invalid configuration: REDIS_CLUSTER_NODES: "a:1" is listed twice'],
    [
      { REDIS_CLUSTER_NODES: 'redis://:secret@a:1,rediss://:secret@b:1' },
      'invalid configuration: REDIS_CLUSTER_NODES: every node must use the same scheme (redis:// or rediss://) and the same credentials',
    ],
    [{ REDIS_CLUSTER_NODES: 'http://a:1' }, 'invalid configuration: REDIS_CLUSTER_NODES: "http://a:1" is not host:port'],
    [
      { REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:1' },
      'invalid configuration: REDIS_CLUSTER_NODES: set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
    ],
    [{ REDIS_CLUSTER_POPULARITY_SHARDS: '8' }, 'invalid configuration: REDIS_CLUSTER_POPULARITY_SHARDS: applies only to a Redis Cluster'],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_CLUSTER_POPULARITY_SHARDS: '0' }, 'invalid configuration: REDIS_CLUSTER_POPULARITY_SHARDS'],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_CLUSTER_POPULARITY_SHARDS: '2000' }, 'invalid configuration: REDIS_CLUSTER_POPULARITY_SHARDS'],
    [{ REDIS_CLUSTER_ITEM_BUCKETS: '8' }, 'invalid configuration: REDIS_CLUSTER_ITEM_BUCKETS: applies only to a Redis Cluster'],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_CLUSTER_ITEM_BUCKETS: '16385' }, 'invalid configuration: REDIS_CLUSTER_ITEM_BUCKETS'],
    [{ HISTORY_CAP: '0' }, 'invalid configuration: HISTORY_CAP'],
    [{ EVENT_WEIGHTS: 'VIEW=x' }, 'invalid configuration: EVENT_WEIGHTS: expected key=number pairs'],
    [{ EVENT_WEIGHTS: 'SNEEZE=1' }, 'invalid configuration: EVENT_WEIGHTS: "SNEEZE=1": event types are'],
    [{ HISTORY_EVENT_TYPES: 'VIEW,NAP' }, 'invalid configuration: HISTORY_EVENT_TYPES: unknown event type "NAP"'],
    [{ HISTORY_CAP: '10', HISTORY_DEFAULT_LIMIT: '20' }, 'invalid configuration: HISTORY_DEFAULT_LIMIT: must not exceed HISTORY_CAP (10)'],
    [{ LOG_LEVEL: 'loud' }, 'invalid configuration: LOG_LEVEL'],
  ])('names the first invalid variable: %j', (env, message) => {
    expect(() => loadFeaturesConfig(env)).toThrow(message);
  });

  it('reads Redis Cluster seed nodes: host:port, [v6]:port or URLs with shared credentials', () => {
    expect(
      loadFeaturesConfig({
        REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-1:7001,[::1]:7002',
        REDIS_CLUSTER_POPULARITY_SHARDS: '4',
        REDIS_CLUSTER_ITEM_BUCKETS: '256',
      }),
    ).toMatchObject({
      redisUrl: undefined,
      redisCluster: {
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: 'redis-1', port: 7001 },
          { host: '::1', port: 7002 },
        ],
        tls: false,
      },
      redisClusterPopularityShards: 4,
      redisClusterItemBuckets: 256,
    });
    expect(loadFeaturesConfig({ REDIS_CLUSTER_NODES: 'rediss://app:p%40ss@a:6379,rediss://app:p%40ss@b:6379/' }).redisCluster).toEqual({
      nodes: [
        { host: 'a', port: 6379 },
        { host: 'b', port: 6379 },
      ],
      tls: true,
      username: 'app',
      password: 'p@ss',
    });
  });

  it('never shows a cluster password in an error', () => {
    expect(() => loadFeaturesConfig({ REDIS_CLUSTER_NODES: 'redis://:hunter2@a' })).toThrow('"redis://***@a" is not host:port');
  });

  it('treats an empty variable as unset', () => {
    expect(loadFeaturesConfig({ REDIS_URL: '' }).redisUrl).toBeUndefined();
  });
});
