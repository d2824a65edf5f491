import { DEFAULT_PORTS, type ServiceWiring, allInOneEnv, serviceEnv } from './services.js';

const wiring: ServiceWiring = {
  ports: { features: 41001, retrieval: 41002, preranking: 41003, ranking: 41004, reranking: 41005, gateway: 41000 },
  httpPort: 41080,
  modelsDir: '/w/models',
  indexDir: '/w/indexes',
  redisUrl: undefined,
};

describe('service environments', () => {
  it('keep the defaults every service config has', () => {
    expect(DEFAULT_PORTS).toEqual({
      features: 15051,
      retrieval: 15052,
      preranking: 15053,
      ranking: 15054,
      reranking: 15055,
      gateway: 15050,
      http: 8080,
    });
  });

  it('wire every service to loopback ports and the work directory, dropping inherited values of the variables they control', () => {
    const inherited = {
      PATH: '/bin',
      LOG_LEVEL: 'warn',
      REDIS_URL: 'redis://stray:6379',
      REDIS_CLUSTER_NODES: 'stray:7000',
      MODELS_DIR: '/stray',
      GRPC_PORT: '1',
    };
    const features = serviceEnv('features', wiring, inherited);
    expect(features).toMatchObject({ PATH: '/bin', LOG_LEVEL: 'warn', GRPC_HOST: '127.0.0.1', GRPC_PORT: '41001' });
    expect(features.REDIS_URL).toBeUndefined();
    expect(features.REDIS_CLUSTER_NODES).toBeUndefined();
    expect(features.MODELS_DIR).toBeUndefined();
    expect(serviceEnv('features', { ...wiring, redisUrl: 'redis://127.0.0.1:7000' }, inherited).REDIS_URL).toBe('redis://127.0.0.1:7000');
    expect(serviceEnv('retrieval', wiring, inherited)).toMatchObject({
      GRPC_PORT: '41002',
      FEATURES_ADDRESS: '127.0.0.1:41001',
      MODELS_DIR: '/w/models',
      INDEX_BACKEND: 'embedded',
      INDEX_DIR: '/w/indexes',
    });
    expect(serviceEnv('ranking', wiring, inherited)).toMatchObject({ GRPC_PORT: '41004', MODELS_DIR: '/w/models' });
    const reranking = serviceEnv('reranking', wiring, inherited);
    expect(reranking).toMatchObject({ GRPC_PORT: '41005', FEATURES_ADDRESS: '127.0.0.1:41001' });
    expect(reranking.MODELS_DIR).toBeUndefined();
  });

  it('run the gateway without auth only when no API key is configured, inherited or given', () => {
    const gateway = serviceEnv('gateway', wiring, { AUTH_DISABLED: 'false' });
    expect(gateway).toMatchObject({
      GRPC_PORT: '41000',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '41080',
      FEATURES_ADDRESS: '127.0.0.1:41001',
      RETRIEVAL_ADDRESS: '127.0.0.1:41002',
      PRERANKING_ADDRESS: '127.0.0.1:41003',
      RANKING_ADDRESS: '127.0.0.1:41004',
      RERANKING_ADDRESS: '127.0.0.1:41005',
      AUTH_DISABLED: 'true',
    });
    const inheritedKeys = serviceEnv('gateway', wiring, { API_KEYS: 'me:secret' });
    expect(inheritedKeys.AUTH_DISABLED).toBeUndefined();
    expect(inheritedKeys.API_KEYS).toBe('me:secret');
    expect(serviceEnv('gateway', wiring, {}, { API_KEYS_FILE: '/keys' }).AUTH_DISABLED).toBeUndefined();
    expect(serviceEnv('gateway', wiring, {}, { RETRIEVAL_ADDRESS: '127.0.0.1:1' }).RETRIEVAL_ADDRESS).toBe('127.0.0.1:1');
  });

  it('give the all-in-one process every service variable, the gateway ports as its own and the stages started on SIGUSR2', () => {
    const inherited = { PATH: '/bin', FEATURES_ADDRESS: '10.0.0.1:1', GRPC_LISTEN: 'network', STAGES_START: 'now' };
    const metricsWiring = { ...wiring, redisUrl: 'redis://127.0.0.1:7000', metricsPorts: { gateway: 41099 } };
    const env = allInOneEnv(metricsWiring, inherited, { features: { REDIS_KEY_PREFIX: 'p:' }, gateway: { API_KEYS: 'me:k' } });
    expect(env).toMatchObject({
      PATH: '/bin',
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '41000',
      HTTP_PORT: '41080',
      FEATURES_GRPC_PORT: '41001',
      STAGES_START: 'on-sigusr2',
      REDIS_URL: 'redis://127.0.0.1:7000',
      REDIS_KEY_PREFIX: 'p:',
      MODELS_DIR: '/w/models',
      INDEX_DIR: '/w/indexes',
      API_KEYS: 'me:k',
      METRICS_PORT: '41099',
    });
    // The process wires the stages to each other in-process; no inherited address or listen mode leaks in.
    for (const key of ['FEATURES_ADDRESS', 'RETRIEVAL_ADDRESS', 'RANKING_ADDRESS', 'GRPC_LISTEN', 'AUTH_DISABLED'])
      expect(env[key]).toBeUndefined();
  });
});
