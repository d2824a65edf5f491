import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore, publishIndex, type IndexTarget } from './publish.js';
import { clusteredUnitVectors } from './synthetic-vectors.js';
import { type IndexBuildInput, type IndexInfo } from './vector-store.js';

const DIM = 8;

function build(version: string, count = 300): IndexBuildInput {
  return {
    ids: Array.from({ length: count }, (_, i) => `v${version}-${i}`),
    vectors: clusteredUnitVectors({ count, dim: DIM, clusters: 3, seed: Number(version) }),
    dim: DIM,
    metric: 'ip',
    version,
    modelVersion: `model-${version}`,
  };
}

describe('publishIndex / openStore (embedded)', () => {
  let root: string;
  let target: IndexTarget;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vector-publish-'));
    target = { kind: 'embedded', root };
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('fails clearly when nothing is published', async () => {
    await expect(openStore(target)).rejects.toThrow(`no complete index version under ${root}: publish one first`);
  });

  it('publishes versions in order, serves the latest, and keeps only `retain` of them', async () => {
    expect(await publishIndex(target, build('1'))).toEqual({
      version: '1',
      backend: 'embedded',
      size: 300,
      dimension: DIM,
      metric: 'ip',
      modelVersion: 'model-1',
    });
    await publishIndex(target, build('2'));
    await expect(publishIndex(target, build('2'))).rejects.toThrow('version: "2" does not sort after the latest version "2"');
    await expect(publishIndex(target, build('1'))).rejects.toThrow(/does not sort after/);
    await publishIndex(target, build('10'), { retain: 2 });
    expect(readdirSync(root).sort()).toEqual(['10', '2']);
    const store = await openStore(target);
    expect(store.info()).toMatchObject({ version: '10', modelVersion: 'model-10', size: 300 });
    await store.close();
  });

  it('swaps a running store to a newly published version on reload, with searches running throughout', async () => {
    await publishIndex(target, build('1'));
    const swaps: [IndexInfo, IndexInfo][] = [];
    const store = await openStore(target, { onSwap: (current, previous) => swaps.push([current, previous]) });
    const query = clusteredUnitVectors({ count: 1, dim: DIM, clusters: 3, seed: 99 });
    let stop = false;
    let failures = 0;
    const prefixes = new Set<string>();
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const results = await store.search(query, 5);
          if (results.length !== 5) failures++;
          prefixes.add(results[0]!.id.split('-')[0]!);
        } catch {
          failures++;
        }
        await sleep(0);
      }
    });

    expect(await store.reload()).toMatchObject({ version: '1' });
    await publishIndex(target, build('2', 500));
    expect(await store.reload()).toMatchObject({ version: '2', size: 500 });
    await sleep(10);
    stop = true;
    await Promise.all(clients);
    expect(failures).toBe(0);
    expect([...prefixes].sort()).toEqual(['v1', 'v2']);
    expect(swaps.map(([current, previous]) => [current.version, previous.version])).toEqual([['2', '1']]);
    await store.close();
  });

  it('polls the root for a new version and keeps serving when a new version is corrupt', async () => {
    await publishIndex(target, build('1'));
    const errors: unknown[] = [];
    const store = await openStore(target, { pollIntervalMs: 20, onError: (error) => errors.push(error) });
    await publishIndex(target, build('2'));
    for (let i = 0; i < 200 && store.info().version !== '2'; i++) await sleep(10);
    expect(store.info().version).toBe('2');

    // A corrupt version appears atomically (built aside, then moved in), as a broken publish would leave it.
    const aside = mkdtempSync(join(tmpdir(), 'vector-aside-'));
    await publishIndex({ kind: 'embedded', root: aside }, build('3'));
    writeFileSync(join(aside, '3', 'ids.json'), '["corrupted"]');
    renameSync(join(aside, '3'), join(root, '3'));
    rmSync(aside, { recursive: true });
    for (let i = 0; i < 200 && errors.length === 0; i++) await sleep(10);
    expect(String(errors[0])).toMatch(/3\/ids\.json: .*bytes, but meta\.json records/);
    await expect(store.reload()).rejects.toThrow(/3\/ids\.json: .*bytes, but meta\.json records/);
    expect(store.info().version).toBe('2');
    expect((await store.search(clusteredUnitVectors({ count: 1, dim: DIM, seed: 4 }), 3)).map((n) => n.id.split('-')[0])).toEqual([
      'v2',
      'v2',
      'v2',
    ]);

    // Removing the broken newest version rolls the root back to the one serving.
    rmSync(join(root, '3'), { recursive: true });
    expect(await store.reload()).toMatchObject({ version: '2' });
    await store.close();
  });
});
