import { curlLines, firstApiKey, readyMessage } from './ready-message.js';

describe('ready message', () => {
  it('prints working curl calls, with the first API key when auth is on', () => {
    expect(curlLines('http://127.0.0.1:8080', { AUTH_DISABLED: 'true' })).toEqual([
      `curl -s -X POST http://127.0.0.1:8080/v1/recommendations -H 'content-type: application/json' -d '{"user_id":"user-1","k":10}'`,
      `curl -s 'http://127.0.0.1:8080/v1/recommendations?user_id=user-1&k=10'`,
    ]);
    expect(curlLines('http://127.0.0.1:8080', { API_KEYS: 'alice:s3cr:et, bob:b' })).toEqual([
      `curl -s -X POST http://127.0.0.1:8080/v1/recommendations -H 'content-type: application/json' -H 'x-api-key: s3cr:et' -d '{"user_id":"user-1","k":10}'`,
      `curl -s -H 'x-api-key: s3cr:et' 'http://127.0.0.1:8080/v1/recommendations?user_id=user-1&k=10'`,
    ]);
    expect(curlLines('http://h:1', { API_KEYS_FILE: '/keys' })[1]).toBe(
      `curl -s -H 'x-api-key: YOUR_API_KEY' 'http://h:1/v1/recommendations?user_id=user-1&k=10'`,
    );
    expect(firstApiKey(undefined)).toBeUndefined();
    expect(firstApiKey('nameonly')).toBeUndefined();
  });

  it('lists every service, says auth is off, and marks what was left out', () => {
    const message = readyMessage({
      addresses: {
        features: '127.0.0.1:15051',
        retrieval: '127.0.0.1:15052',
        preranking: '127.0.0.1:15053',
        ranking: '127.0.0.1:15054',
        reranking: '',
        gateway: '127.0.0.1:15050',
      },
      httpUrl: 'http://127.0.0.1:8080',
      workDir: '/w',
      modelsDir: '/w/models',
      indexDir: '/w/indexes',
      redisUrl: undefined,
      gatewayEnv: { AUTH_DISABLED: 'true' },
      seconds: 12.34,
    });
    expect(message).toContain('recsys is ready (12.3 s):');
    expect(message).toContain('  features    127.0.0.1:15051  in-memory store');
    expect(message).toContain('  reranking   (left out)');
    expect(message).toContain('  gateway     127.0.0.1:15050  gRPC; REST at http://127.0.0.1:8080');
    expect(message).toContain('AUTH_DISABLED=true');
    expect(message).toContain(`  curl -s 'http://127.0.0.1:8080/v1/recommendations?user_id=user-1&k=10'`);
    expect(message).toContain('/w/logs/<service>.log');
  });

  it('points at the one log of the all-in-one process', () => {
    const inproc = (name: string) => `inproc://${name}`;
    const message = readyMessage({
      addresses: {
        features: '127.0.0.1:50051',
        retrieval: inproc('retrieval'),
        preranking: inproc('preranking'),
        ranking: inproc('ranking'),
        reranking: inproc('reranking'),
        gateway: '127.0.0.1:50050',
      },
      httpUrl: 'http://127.0.0.1:8080',
      workDir: '/w',
      modelsDir: '/w/models',
      indexDir: '/w/indexes',
      redisUrl: undefined,
      gatewayEnv: { AUTH_DISABLED: 'true' },
      seconds: 1,
    });
    expect(message).toContain('  ranking     inproc://ranking');
    expect(message).toContain('/w/logs/all-in-one.log');
  });
});
