import { loadRankingConfig } from './config.js';
import { FEATURES_TIMEOUT_DEFAULT_MS } from '@recsys/service-kit';

describe('loadRankingConfig', () => {
  it('applies the defaults: port 15054, CPU, batching on', () => {
    expect(loadRankingConfig({})).toMatchObject({
      grpcPort: 15054,
      featuresAddress: '127.0.0.1:15051',
      featuresTimeoutMs: FEATURES_TIMEOUT_DEFAULT_MS,
      modelsDir: 'models',
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      sessionThread: 'worker',
      batching: true,
      maxBatchSize: 2048,
      maxQueueDelayMs: 1,
      maxQueueLength: 512,
      maxCandidates: 2000,
      itemCache: { maxItems: 100_000, ttlMs: 60_000, missingTtlMs: 5_000 },
    });
  });

  it('reads the item cache settings; size 0 turns it off', () => {
    expect(loadRankingConfig({ ITEM_CACHE_SIZE: '0', ITEM_CACHE_TTL_MS: '1500', ITEM_CACHE_MISSING_TTL_MS: '0' }).itemCache).toEqual({
      maxItems: 0,
      ttlMs: 1500,
      missingTtlMs: 0,
    });
  });

  it('reads the provider preference in order and batching switches', () => {
    const config = loadRankingConfig({
      RANKING_EXECUTION_PROVIDERS: ' CUDA, cpu,cuda',
      RANKING_BATCHING: 'off',
      RANKING_MAX_QUEUE_DELAY_MS: '1.5',
      RANKING_SESSION_THREAD: 'main',
    });
    expect(config).toMatchObject({ executionProviders: ['cuda', 'cpu'], batching: false, maxQueueDelayMs: 1.5, sessionThread: 'main' });
  });

  it.each(['features:15051', '10.0.0.7:15051', '[::1]:15051', 'dns:///features.recsys.svc:15051'])(
    'accepts the feature address %s',
    (address) => {
      expect(loadRankingConfig({ FEATURES_ADDRESS: address }).featuresAddress).toBe(address);
    },
  );

  it.each([
    [
      { RANKING_EXECUTION_PROVIDERS: 'tpu' },
      'invalid configuration: RANKING_EXECUTION_PROVIDERS: unknown provider "tpu"; expected some of cuda, cpu',
    ],
    [{ RANKING_EXECUTION_PROVIDERS: ',' }, 'invalid configuration: RANKING_EXECUTION_PROVIDERS: no provider given'],
    [{ RANKING_BATCHING: 'maybe' }, 'invalid configuration: RANKING_BATCHING: expected true or false, got "maybe"'],
    [{ RANKING_SESSION_THREAD: 'gpu' }, 'invalid configuration: RANKING_SESSION_THREAD'],
    [{ RANKING_MAX_BATCH_SIZE: '0' }, 'invalid configuration: RANKING_MAX_BATCH_SIZE'],
    [{ RANKING_MAX_QUEUE_DELAY_MS: '-1' }, 'invalid configuration: RANKING_MAX_QUEUE_DELAY_MS'],
    [{ FEATURES_ADDRESS: 'localhost' }, 'invalid configuration: FEATURES_ADDRESS: must be host:port (or dns:///host:port)'],
    [{ GRPC_PORT: 'x' }, 'invalid configuration: GRPC_PORT'],
    [{ ITEM_CACHE_SIZE: '-1' }, 'invalid configuration: ITEM_CACHE_SIZE'],
    [{ ITEM_CACHE_TTL_MS: '0' }, 'invalid configuration: ITEM_CACHE_TTL_MS'],
    [{ ITEM_CACHE_MISSING_TTL_MS: 'soon' }, 'invalid configuration: ITEM_CACHE_MISSING_TTL_MS'],
  ])('names the first invalid variable: %j', (env, message) => {
    expect(() => loadRankingConfig(env)).toThrow(message);
  });
});
