import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataSource, MANIFEST_FORMAT, MODEL_NAMES } from '@recsys/trainer';
import { canonicalJson, indexIsCurrent, modelsDecision, sameSource, twoTowerIdentity } from './model-cache.js';

const source = (startTime: number): DataSource => ({
  kind: 'synthetic',
  options: { seed: 42, users: 2000, items: 1000, interactionsPerUser: 40, startTime },
});

/** The manifest fields the cache reads; the rest of a real manifest does not matter to it. */
function publish(root: string, name: string, version: string, data: DataSource, createdAt = '2026-11-29T10:00:00.000Z'): void {
  const dir = join(root, name, version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: MANIFEST_FORMAT, name, version, createdAt, data: { source: data } }));
}

describe('model and index caches', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'recsys-up-models-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('compares data sources whatever the order their keys were written in', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}');
    const reordered = JSON.parse(
      '{"options":{"startTime":5,"users":2000,"items":1000,"seed":42,"interactionsPerUser":40},"kind":"synthetic"}',
    );
    expect(sameSource(reordered, source(5))).toBe(true);
    expect(sameSource(source(5), source(6))).toBe(false);
  });

  it('trains when any model is missing, when the newest versions differ, or when the newest was trained on other data', async () => {
    expect(await modelsDecision(root, source(5))).toEqual({ train: true, reason: `no trained two-tower, dlrm, preranker in ${root}` });
    publish(root, 'two-tower', '1', source(5));
    publish(root, 'dlrm', '1', source(5));
    expect(await modelsDecision(root, source(5))).toEqual({ train: true, reason: `no trained preranker in ${root}` });
    publish(root, 'preranker', '1', source(5));
    expect(await modelsDecision(root, source(5))).toEqual({ train: false, version: '1' });
    expect(await modelsDecision(root, source(6))).toEqual({ train: true, reason: 'version 1 was trained on other data' });
    publish(root, 'two-tower', '2', source(5));
    expect(await modelsDecision(root, source(5))).toEqual({
      train: true,
      reason: 'the newest versions differ (two-tower 2, dlrm 1, preranker 1)',
    });
    // An older version on the wanted data does not count: the services serve the newest.
    for (const name of MODEL_NAMES) publish(root, name, '10', source(6));
    expect(await modelsDecision(root, source(5))).toEqual({ train: true, reason: 'version 10 was trained on other data' });
    expect(await modelsDecision(root, source(6))).toEqual({ train: false, version: '10' });
  });

  it('reuses an index only while it is the newest and holds the serving two-tower version', async () => {
    await expect(twoTowerIdentity(root)).rejects.toThrow(`no two-tower model in ${root}`);
    publish(root, 'two-tower', '3', source(5), '2026-11-29T11:00:00.000Z');
    const current = await twoTowerIdentity(root);
    expect(current).toEqual({ modelsDir: root, version: '3', createdAt: '2026-11-29T11:00:00.000Z' });
    const recorded = { version: '4', twoTower: current };
    expect(indexIsCurrent(recorded, '4', current)).toBe(true);
    expect(indexIsCurrent(undefined, '4', current)).toBe(false);
    expect(indexIsCurrent(recorded, undefined, current)).toBe(false);
    expect(indexIsCurrent(recorded, '5', current)).toBe(false);
    expect(indexIsCurrent(recorded, '4', { ...current, version: '4' })).toBe(false);
    // Same version number, retrained (a new model root or a rebuilt one): a different two-tower.
    expect(indexIsCurrent(recorded, '4', { ...current, createdAt: '2026-11-30T00:00:00.000Z' })).toBe(false);
    expect(indexIsCurrent(recorded, '4', { ...current, modelsDir: '/elsewhere' })).toBe(false);
  });
});
