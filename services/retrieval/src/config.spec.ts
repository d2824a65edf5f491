import { loadRetrievalConfig } from './config.js';
import { FEATURES_TIMEOUT_DEFAULT_MS } from '@recsys/service-kit';

const base = { MODELS_DIR: '/models', INDEX_DIR: '/index' };

describe('loadRetrievalConfig', () => {
  it('applies the defaults: port 15052, embedded index, the default quotas, cpu', () => {
    const config = loadRetrievalConfig(base);
    expect(config).toMatchObject({
      grpcPort: 15052,
      featuresAddress: '127.0.0.1:15051',
      featuresTimeoutMs: FEATURES_TIMEOUT_DEFAULT_MS,
      modelsDir: '/models',
      index: { kind: 'embedded', root: '/index' },
      quotas: { two_tower: 200, popular: 50, item_to_item: 100 },
      defaultLimit: 200,
      maxLimit: 1000,
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      cudaDeviceId: 0,
      sessionThread: 'main',
    });
  });

  it("leaves the item-to-item neighbour cache's size to the index library unless set; 0 turns it off", () => {
    expect(loadRetrievalConfig(base).itemToItemCacheItems).toBeUndefined();
    expect(loadRetrievalConfig({ ...base, ITEM_TO_ITEM_CACHE_ITEMS: '0' }).itemToItemCacheItems).toBe(0);
    expect(loadRetrievalConfig({ ...base, ITEM_TO_ITEM_CACHE_ITEMS: '50000' }).itemToItemCacheItems).toBe(50000);
  });

  it('overrides some quotas by name and reads the Qdrant backend', () => {
    const config = loadRetrievalConfig({
      MODELS_DIR: '/m',
      CHANNEL_QUOTAS: 'popular=0, item_to_item=30',
      INDEX_BACKEND: 'qdrant',
      QDRANT_URL: 'http://qdrant:6333',
      QDRANT_COLLECTION: 'catalogue',
      RETRIEVAL_EXECUTION_PROVIDERS: 'cuda,cpu',
      RETRIEVAL_INTRA_OP_THREADS: '2',
      RETRIEVAL_SESSION_THREAD: 'worker',
    });
    expect(config.quotas).toEqual({ two_tower: 200, popular: 0, item_to_item: 30 });
    expect(config.index).toEqual({ kind: 'qdrant', url: 'http://qdrant:6333', collection: 'catalogue' });
    expect(config).toMatchObject({ executionProviders: ['cuda', 'cpu'], intraOpThreads: 2, sessionThread: 'worker' });
  });

  it.each([
    [{}, 'invalid configuration: MODELS_DIR'],
    [{ MODELS_DIR: '/m' }, 'invalid configuration: INDEX_DIR: required with INDEX_BACKEND=embedded'],
    [{ ...base, INDEX_BACKEND: 'faiss' }, 'invalid configuration: INDEX_BACKEND'],
    [{ MODELS_DIR: '/m', INDEX_BACKEND: 'qdrant' }, 'invalid configuration: QDRANT_URL: required with INDEX_BACKEND=qdrant'],
    [{ ...base, QDRANT_URL: 'qdrant:6333' }, 'invalid configuration: QDRANT_URL'],
    [{ ...base, FEATURES_ADDRESS: 'localhost' }, 'invalid configuration: FEATURES_ADDRESS: must be host:port (or dns:///host:port)'],
    [
      { ...base, CHANNEL_QUOTAS: 'trending=5' },
      'invalid configuration: CHANNEL_QUOTAS: "trending=5": channels are two_tower, popular, item_to_item',
    ],
    [{ ...base, CHANNEL_QUOTAS: 'popular=-1' }, 'invalid configuration: CHANNEL_QUOTAS'],
    [{ ...base, CHANNEL_QUOTAS: 'popular=5000' }, 'invalid configuration: CHANNEL_QUOTAS: popular=5000 exceeds MAX_LIMIT (1000)'],
    [{ ...base, DEFAULT_LIMIT: '2000' }, 'invalid configuration: DEFAULT_LIMIT: must not exceed MAX_LIMIT (1000)'],
    [
      { ...base, RETRIEVAL_EXECUTION_PROVIDERS: 'tpu' },
      'invalid configuration: RETRIEVAL_EXECUTION_PROVIDERS: unknown provider "tpu"; expected some of cuda, cpu in order of preference',
    ],
    [{ ...base, RETRIEVAL_SESSION_THREAD: 'gpu' }, 'invalid configuration: RETRIEVAL_SESSION_THREAD'],
    [
      { ...base, EXECUTION_PROVIDERS: 'cuda,cpu' },
      "invalid configuration: EXECUTION_PROVIDERS: renamed to RETRIEVAL_EXECUTION_PROVIDERS (the name every model stage's sessions use)",
    ],
    [
      { ...base, INTRA_OP_THREADS: '2' },
      "invalid configuration: INTRA_OP_THREADS: renamed to RETRIEVAL_INTRA_OP_THREADS (the name every model stage's sessions use)",
    ],
    [{ ...base, ITEM_TO_ITEM_DECAY: '0' }, 'invalid configuration: ITEM_TO_ITEM_DECAY'],
    [{ ...base, ITEM_TO_ITEM_CACHE_ITEMS: '-1' }, 'invalid configuration: ITEM_TO_ITEM_CACHE_ITEMS'],
    [{ ...base, ITEM_TO_ITEM_CACHE_ITEMS: 'many' }, 'invalid configuration: ITEM_TO_ITEM_CACHE_ITEMS'],
    [{ ...base, FEATURES_TIMEOUT_MS: 'soon' }, 'invalid configuration: FEATURES_TIMEOUT_MS'],
  ])('names the first invalid variable: %j', (env, message) => {
    expect(() => loadRetrievalConfig(env)).toThrow(message);
  });
});
