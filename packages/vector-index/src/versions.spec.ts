import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VectorIndexArgumentError } from './errors.js';
import { assertVersionName, compareVersions, findLatestVersion, listVersions } from './versions.js';

describe('version names', () => {
  it('orders digit runs as numbers and the rest as text', () => {
    const shuffled = ['10', '9', '2', '1', '20250101-1200', '20241231-2359', 'v2', 'v10', 'v10a', '010'];
    expect([...shuffled].sort(compareVersions)).toEqual([
      '1',
      '2',
      '9',
      '010',
      '10',
      '20241231-2359',
      '20250101-1200',
      'v2',
      'v10',
      'v10a',
    ]);
    expect(compareVersions('7', '7')).toBe(0);
    expect(compareVersions('007', '7')).not.toBe(0);
  });

  it('accepts safe names and refuses others, naming the field', () => {
    expect(() => assertVersionName('2025-01-01.3_b')).not.toThrow();
    for (const bad of ['', '.staging', '../x', 'a/b', 'a b', 'x'.repeat(65)]) {
      expect(() => assertVersionName(bad)).toThrow(VectorIndexArgumentError);
    }
    expect(() => assertVersionName('a/b', 'input.version')).toThrow(/^input\.version: "a\/b" is not a valid version name/);
  });
});

describe('listVersions / findLatestVersion', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vector-versions-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const version = (name: string, complete = true) => {
    mkdirSync(join(root, name));
    if (complete) writeFileSync(join(root, name, 'meta.json'), '{}');
  };

  it('lists complete versions oldest first, ignoring staging and incomplete directories', async () => {
    version('2');
    version('10');
    version('11', false);
    mkdirSync(join(root, '.staging-12-1-ab'));
    writeFileSync(join(root, '.staging-12-1-ab', 'meta.json'), '{}');
    writeFileSync(join(root, '13'), 'a file, not a version');
    expect(await listVersions(root)).toEqual(['2', '10']);
    expect(await findLatestVersion(root)).toBe('10');
  });

  it('finds nothing under a missing or empty root', async () => {
    expect(await findLatestVersion(join(root, 'absent'))).toBeUndefined();
    expect(await listVersions(root)).toEqual([]);
  });
});
