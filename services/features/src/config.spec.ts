import { common } from '@recsys/contracts';
import { loadFeaturesConfig } from './config.js';

describe('loadFeaturesConfig', () => {
  it('applies the defaults: in-memory store, port 15051', () => {
    const config = loadFeaturesConfig({});
    expect(config).toMatchObject({ redisUrl: undefined, grpcPort: 15051, historyCap: 200, maxBatchSize: 5000, metricsPort: -1 });
    expect(config.eventWeights[common.EventType.PURCHASE]).toBe(4);
    expect(config.historyEventTypes.has(common.EventType.IMPRESSION)).toBe(false);
  });

  it('parses event weights and history types by name', () => {
    const config = loadFeaturesConfig({ EVENT_WEIGHTS: 'view=0.5, purchase=10', HISTORY_EVENT_TYPES: 'PURCHASE' });
    expect(config.eventWeights).toEqual({ [common.EventType.VIEW]: 0.5, [common.EventType.PURCHASE]: 10 });
    expect([...config.historyEventTypes]).toEqual([common.EventType.PURCHASE]);
  });

  it.each([
    [{ REDIS_URL: 'localhost:6379' }, 'invalid configuration: REDIS_URL: must be a redis:// or rediss:// URL'],
    [{ GRPC_PORT: '70000' }, 'invalid configuration: GRPC_PORT'],
    [{ HISTORY_CAP: '0' }, 'invalid configuration: HISTORY_CAP'],
    [{ EVENT_WEIGHTS: 'VIEW=x' }, 'invalid configuration: EVENT_WEIGHTS: expected key=number pairs'],
    [{ EVENT_WEIGHTS: 'SNEEZE=1' }, 'invalid configuration: EVENT_WEIGHTS: "SNEEZE=1": event types are'],
    [{ HISTORY_EVENT_TYPES: 'VIEW,NAP' }, 'invalid configuration: HISTORY_EVENT_TYPES: unknown event type "NAP"'],
    [{ HISTORY_CAP: '10', HISTORY_DEFAULT_LIMIT: '20' }, 'invalid configuration: HISTORY_DEFAULT_LIMIT: must not exceed HISTORY_CAP (10)'],
    [{ LOG_LEVEL: 'loud' }, 'invalid configuration: LOG_LEVEL'],
  ])('names the first invalid variable: %j', (env, message) => {
    expect(() => loadFeaturesConfig(env)).toThrow(message);
  });

  it('treats an empty variable as unset', () => {
    expect(loadFeaturesConfig({ REDIS_URL: '' }).redisUrl).toBeUndefined();
  });
});
