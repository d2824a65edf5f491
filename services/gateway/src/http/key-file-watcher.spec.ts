import { mkdirSync, mkdtempSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, ServiceMetrics } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';
import { AccessControl } from './access-control.js';
import { UnauthenticatedError } from './errors.js';
import { KeyFileWatcher } from './key-file-watcher.js';

const KEY_A = 'aaaaaaaaaaaaaaaa-first-key';
const KEY_B = 'bbbbbbbbbbbbbbbb-second-key';
const KEY_C = 'cccccccccccccccc-third-key';

const access = (apiKeysFile: string): AccessConfig => ({
  authDisabled: false,
  apiKeys: undefined,
  apiKeysFile,
  apiKeysReloadMs: 0,
  rateLimitPerSecond: 0,
  rateLimitBurst: 1,
  corsOrigins: [],
  maxBodyBytes: 1024,
});

function setup(path: string) {
  const control = AccessControl.fromConfig(access(path), new ServiceMetrics('test'), createLogger('test', 'silent'));
  const watcher = new KeyFileWatcher(path, () => control.reloadKeys(access(path)));
  return { control, watcher };
}

describe('API keys rotate without a restart', () => {
  it('an env file: a changed file is read again, and a file that does not validate leaves the current keys serving', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'recsys-keys-')), 'keys.env');
    writeFileSync(path, `A=${KEY_A}\n`);
    const { control, watcher } = setup(path);
    expect(await control.admit(KEY_A, 'test')).toBe('A');
    expect(watcher.check()).toBe(false);

    writeFileSync(path, `B=${KEY_B}\n`);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(watcher.check()).toBe(true);
    expect(await control.admit(KEY_B, 'test')).toBe('B');
    await expect(control.admit(KEY_A, 'test')).rejects.toThrow(UnauthenticatedError);

    writeFileSync(path, 'C=too-short\n');
    utimesSync(path, new Date(), new Date(Date.now() + 10000));
    expect(watcher.check()).toBe(true);
    expect(control.keyNames).toEqual(['B']);
    expect(await control.admit(KEY_B, 'test')).toBe('B');
  });

  it('a Kubernetes Secret mount: the ..data link swapped to a new version is noticed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recsys-secret-'));
    const version = (name: string, files: Record<string, string>) => {
      mkdirSync(join(dir, name));
      for (const [file, key] of Object.entries(files)) writeFileSync(join(dir, name, file), `${key}\n`);
    };
    version('..v1', { web: KEY_A });
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/web', join(dir, 'web'));
    const { control, watcher } = setup(dir);
    expect(await control.admit(KEY_A, 'test')).toBe('web');

    // What the kubelet does: write the new version beside the old, then atomically repoint ..data.
    version('..v2', { web: KEY_C });
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(watcher.check()).toBe(true);
    expect(await control.admit(KEY_C, 'test')).toBe('web');
    await expect(control.admit(KEY_A, 'test')).rejects.toThrow(UnauthenticatedError);
    expect(watcher.check()).toBe(false);
  });
});
