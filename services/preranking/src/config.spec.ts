import { loadPrerankingConfig } from './config.js';
import { FEATURES_TIMEOUT_DEFAULT_MS } from '@recsys/service-kit';

describe('loadPrerankingConfig', () => {
  it('applies the defaults: port 15053, CPU, keep 200 of at most 5000', () => {
    expect(loadPrerankingConfig({})).toMatchObject({
      grpcPort: 15053,
      featuresAddress: '127.0.0.1:15051',
      featuresTimeoutMs: FEATURES_TIMEOUT_DEFAULT_MS,
      modelsDir: 'models',
      executionProviders: ['cpu'],
      defaultLimit: 200,
      maxLimit: 1000,
      maxCandidates: 5000,
      itemCache: { maxItems: 100_000, ttlMs: 60_000, missingTtlMs: 5_000 },
    });
  });

  it.each([
    [{ PRERANKING_EXECUTION_PROVIDERS: 'cuda,npu' }, 'invalid configuration: PRERANKING_EXECUTION_PROVIDERS: unknown provider "npu"'],
    [
      { PRERANKING_DEFAULT_LIMIT: '50', PRERANKING_MAX_LIMIT: '10' },
      'invalid configuration: PRERANKING_DEFAULT_LIMIT: must not exceed PRERANKING_MAX_LIMIT (10)',
    ],
    [{ PRERANKING_MAX_CANDIDATES: '0' }, 'invalid configuration: PRERANKING_MAX_CANDIDATES'],
    [{ PRERANKING_EXECUTION_PROVIDERS: ' , ' }, 'invalid configuration: PRERANKING_EXECUTION_PROVIDERS: no provider given'],
    [{ ITEM_CACHE_SIZE: '1.5' }, 'invalid configuration: ITEM_CACHE_SIZE'],
    [{ ITEM_CACHE_TTL_MS: '-5' }, 'invalid configuration: ITEM_CACHE_TTL_MS'],
    [{ FEATURES_ADDRESS: 'nohost' }, 'invalid configuration: FEATURES_ADDRESS: must be host:port (or dns:///host:port)'],
  ])('names the first invalid variable: %j', (env, message) => {
    expect(() => loadPrerankingConfig(env)).toThrow(message);
  });
});
