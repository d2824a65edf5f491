import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareVersionNames, newestIndexVersion } from './versions.js';

describe('index versions', () => {
  it('orders names naturally: numbers by value, then text', () => {
    expect(['10', '9', '2', '010x', '1'].sort(compareVersionNames)).toEqual(['1', '2', '9', '10', '010x']);
    expect(compareVersionNames('20250101-1200', '20250101-0900')).toBeGreaterThan(0);
    expect(compareVersionNames('7', '7')).toBe(0);
  });

  it('finds the newest complete version: meta.json present, staging directories ignored', async () => {
    const root = mkdtempSync(join(tmpdir(), 'recsys-up-index-'));
    try {
      expect(await newestIndexVersion(join(root, 'missing'))).toBeUndefined();
      for (const name of ['2', '10', '.staging-11', '12']) mkdirSync(join(root, name));
      for (const name of ['2', '10', '.staging-11']) writeFileSync(join(root, name, 'meta.json'), '{}');
      expect(await newestIndexVersion(root)).toBe('10');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
