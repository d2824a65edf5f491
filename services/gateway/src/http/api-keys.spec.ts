import type * as nodeCrypto from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';
import { ApiKeyStore, parseKeyFile, parseKeyList, presentedKey } from './api-keys.js';

const KEY_A = 'aaaaaaaaaaaaaaaa-first-key';
const KEY_B = 'bbbbbbbbbbbbbbbb-second-key';

const access = (init: Partial<AccessConfig>): AccessConfig => ({
  authDisabled: false,
  apiKeys: undefined,
  apiKeysFile: undefined,
  apiKeysReloadMs: 0,
  rateLimitPerSecond: 0,
  rateLimitBurst: 1,
  corsOrigins: [],
  maxBodyBytes: 1024,
  ...init,
});

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('ApiKeyStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gateway-keys-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('authenticates exactly the configured keys', () => {
    const store = ApiKeyStore.fromConfig(access({ apiKeys: `web:${KEY_A}, mobile:${KEY_B}` }));
    expect(store.names).toEqual(['web', 'mobile']);
    expect(store.authenticate(KEY_A)).toEqual({ name: 'web' });
    expect(store.authenticate(KEY_B)).toEqual({ name: 'mobile' });
    // Same length, same prefix, one character off: all refused.
    expect(store.authenticate(KEY_A.slice(0, -1) + 'x')).toBeUndefined();
    expect(store.authenticate(KEY_A.slice(0, -1))).toBeUndefined();
    expect(store.authenticate(KEY_A + 'y')).toBeUndefined();
    expect(store.authenticate('')).toBeUndefined();
    expect(store.authenticate(undefined)).toBeUndefined();
  });

  it('reads a file of name:key and NAME=key lines, skipping comments and blanks', () => {
    const file = join(dir, 'keys.env');
    writeFileSync(file, `# the web app\nweb:${KEY_A}\n\nexport MOBILE="${KEY_B}"\r\n`);
    const store = ApiKeyStore.fromConfig(access({ apiKeysFile: file, apiKeys: 'cli:cccccccccccccccccccc' }));
    expect(store.names.sort()).toEqual(['MOBILE', 'cli', 'web']);
    expect(store.authenticate(KEY_B)).toEqual({ name: 'MOBILE' });
  });

  it('reads a mounted Kubernetes Secret directory, skipping ..data entries', () => {
    // The layout kubelet writes: real files under a timestamped dir, ..data -> it, and each key a symlink through ..data.
    mkdirSync(join(dir, '..2024_01_01'));
    writeFileSync(join(dir, '..2024_01_01', 'web'), `${KEY_A}\n`);
    writeFileSync(join(dir, '..2024_01_01', 'mobile'), KEY_B);
    symlinkSync('..2024_01_01', join(dir, '..data'));
    symlinkSync(join('..data', 'web'), join(dir, 'web'));
    symlinkSync(join('..data', 'mobile'), join(dir, 'mobile'));
    const store = ApiKeyStore.fromConfig(access({ apiKeysFile: dir }));
    expect(store.names).toEqual(['mobile', 'web']);
    expect(store.authenticate(KEY_A)).toEqual({ name: 'web' });
    expect(store.authenticate(`${KEY_A}\n`)).toBeUndefined();
  });

  it('refuses short keys at start-up naming the variable, never the key', () => {
    const error = configErrorOf(() => ApiKeyStore.fromConfig(access({ apiKeys: 'web:short-key' })));
    expect(error.variable).toBe('API_KEYS');
    expect(error.message).toContain('at least 16 characters');
    expect(error.message).not.toContain('short-key');
    const file = join(dir, 'keys');
    writeFileSync(file, 'web=tooshort\n');
    expect(configErrorOf(() => ApiKeyStore.fromConfig(access({ apiKeysFile: file }))).variable).toBe('API_KEYS_FILE');
  });

  it.each([
    ['a missing name', `:${KEY_A}`],
    ['no separator', KEY_A],
    ['a repeated name', `web:${KEY_A},web:${KEY_B}`],
    ['one key under two names', `web:${KEY_A},mobile:${KEY_A}`],
    ['whitespace inside a key', `web:${KEY_A} x`],
  ])('refuses %s', (_what, apiKeys) => {
    expect(configErrorOf(() => ApiKeyStore.fromConfig(access({ apiKeys }))).variable).toBe('API_KEYS');
  });

  it('refuses a missing file and a file without keys', () => {
    expect(configErrorOf(() => ApiKeyStore.fromConfig(access({ apiKeysFile: join(dir, 'absent') }))).variable).toBe('API_KEYS_FILE');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '# nothing yet\n');
    expect(configErrorOf(() => ApiKeyStore.fromConfig(access({ apiKeysFile: empty }))).message).toContain('no API key configured');
  });

  it('makes every caller anonymous when auth is disabled, and says so', () => {
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message), info: () => undefined };
    const store = ApiKeyStore.fromConfig(access({ authDisabled: true }), logger as never);
    expect(store.authenticate(undefined)).toEqual({ name: 'anonymous' });
    expect(store.authenticate('anything')).toEqual({ name: 'anonymous' });
    expect(warnings.join()).toContain('authentication is OFF');
  });
});

describe('key parsing helpers', () => {
  it('splits name:key at the first colon only', () => {
    expect(parseKeyList(`a:${KEY_A}:with-colon, ,b:${KEY_B}`)).toEqual([
      ['a', `${KEY_A}:with-colon`],
      ['b', KEY_B],
    ]);
  });

  it('names the bad line of a key file', () => {
    expect(() => parseKeyFile('ok:x\n\nnot a key line\n')).toThrow('line 3');
  });

  it('takes the key from Authorization: Bearer first, then x-api-key', () => {
    expect(presentedKey(`Bearer ${KEY_A}`, KEY_B)).toBe(KEY_A);
    expect(presentedKey(`bearer   ${KEY_A} `, undefined)).toBe(KEY_A);
    expect(presentedKey('Basic dXNlcjpwYXNz', KEY_B)).toBe(KEY_B);
    expect(presentedKey(undefined, ` ${KEY_B} `)).toBe(KEY_B);
    expect(presentedKey('Bearer', '')).toBeUndefined();
    expect(presentedKey(undefined, undefined)).toBeUndefined();
  });
});

describe('API key comparison against timing probes', () => {
  // The module object api-keys.ts calls through (CommonJS under jest), so the spy sees its comparisons.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require('node:crypto') as typeof nodeCrypto;

  it('compares fixed-length digests against every configured key, whichever key (if any) matches', () => {
    const keyC = 'cccccccccccccccc-third-key';
    const store = new ApiKeyStore([
      ['a', KEY_A, 'API_KEYS'],
      ['b', KEY_B, 'API_KEYS'],
      ['c', keyC, 'API_KEYS'],
    ]);
    const spy = jest.spyOn(crypto, 'timingSafeEqual');
    try {
      const probes = [KEY_A, keyC, `${KEY_A.slice(0, -1)}X`, 'a', 'x'.repeat(5000), `${KEY_B}-longer`, '\u0000'];
      for (const probe of probes) {
        spy.mockClear();
        store.authenticate(probe);
        // No early exit on a match or a mismatch, and every comparison is of two 32-byte digests: neither which key
        // matched, nor how much of a key a probe shares, nor the probe's length shows in the work done.
        expect(spy).toHaveBeenCalledTimes(3);
        for (const [left, right] of spy.mock.calls) {
          expect((left as Buffer).length).toBe(32);
          expect((right as Buffer).length).toBe(32);
        }
      }
      expect(store.authenticate(keyC)).toEqual({ name: 'c' });
      expect(store.authenticate(`${KEY_A.slice(0, -1)}X`)).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });
});
