import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTrainingSetup, generateSynthetic, writeDatasetFiles } from '@recsys/data';
import { type DataSource, withSampledNegatives, trainRun } from '@recsys/trainer';
import { builtEntry, runNode } from '@recsys/testing';

// Implicit feedback: a log of positives only (the synthetic data's clicks, its non-clicks dropped).
function positivesOnly(dir: string): DataSource {
  const dataset = generateSynthetic({ seed: 7, users: 300, items: 150, interactionsPerUser: 40 });
  const keep: number[] = [];
  for (let r = 0; r < dataset.interactions.length; r++) if (dataset.interactions.value[r] === 1) keep.push(r);
  const i = dataset.interactions;
  const pick = <T extends ArrayLike<number>>(a: T, make: (n: number[]) => T) => make(keep.map((r) => a[r]!));
  const interactions = {
    ...i,
    length: keep.length,
    user: pick(i.user, (v) => Int32Array.from(v)),
    item: pick(i.item, (v) => Int32Array.from(v)),
    value: pick(i.value, (v) => Float32Array.from(v)),
    timestamp: pick(i.timestamp, (v) => Float64Array.from(v)),
  };
  writeDatasetFiles({ ...dataset, interactions }, dir);
  return { kind: 'files', dir, setup: { historyLength: 0 } };
}

const versionsOf = (root: string, model: string) => (existsSync(join(root, model)) ? readdirSync(join(root, model)) : []);

describe('implicit feedback: ranking training on all-positive data', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'recsys-implicit-'));
  const source = positivesOnly(join(tmp, 'data'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('samples negatives (uniform by default) and trains DLRM and the pre-ranker to a finite AUC above 0.5', async () => {
    const out = join(tmp, 'models');
    const run = await trainRun(source, {
      out,
      seed: 1,
      retrieval: { epochs: 2, batchSize: 128 },
      ranking: { epochs: 3 },
      preranking: { epochs: 2 },
      compareUncorrected: false,
    });
    const dlrm = run.manifests.dlrm;
    expect(dlrm.training.negatives).toEqual({ source: 'sampled', sampler: 'uniform', ratio: 4, sampled: expect.any(Number) });
    expect(run.manifests.preranker.training.negatives).toEqual(dlrm.training.negatives);
    expect(Number.isFinite(dlrm.metrics.auc)).toBe(true);
    expect(dlrm.metrics.auc).toBeGreaterThan(0.5);
    expect(run.manifests.preranker.metrics.auc).toBeGreaterThan(0.5);
    const report = run.report.models.find((m) => m.name === 'dlrm')!;
    // The test side holds held-out positives against negatives sampled the same way (4 per positive).
    expect(report.ranking!.positives).toBeGreaterThan(0);
    expect(report.ranking!.testRows).toBeGreaterThan(4 * report.ranking!.positives);
    expect(report.options!.negatives).toEqual(dlrm.training.negatives);
    // The popularity baseline beside the Recall@k curve.
    const twoTower = run.report.models.find((m) => m.name === 'two-tower')!;
    expect(twoTower.popularity!.recallCurve).toHaveLength(100);
    expect(run.manifests['two-tower'].metrics['recall@10_popularity']).toBeGreaterThan(0);
    expect(readFileSync(run.reportFiles.html, 'utf8')).toContain('popularity baseline');
  }, 180_000);

  it('popularity-weighted sampling draws popular items more often than uniform sampling', () => {
    const setup = buildTrainingSetup(generateSynthetic({ seed: 3, users: 200, items: 300, interactionsPerUser: 20 }), { historyLength: 0 });
    const meanPopularity = (sampler: 'uniform' | 'popularity') => {
      const { setup: s, sampled } = withSampledNegatives(setup, { ratio: 2, sampler, seed: 1 });
      const counts = new Float64Array(300);
      for (let r = 0; r < setup.dataset.interactions.length; r++)
        if (setup.split[r] === 1 && setup.dataset.interactions.value[r] === 1) counts[setup.dataset.interactions.item[r]!]!++;
      let sum = 0;
      for (let r = 0; r < s.dataset.interactions.length; r++)
        if (s.dataset.interactions.value[r]! < 1) sum += counts[s.dataset.interactions.item[r]!]!;
      return sum / sampled;
    };
    expect(meanPopularity('popularity')).toBeGreaterThan(1.5 * meanPopularity('uniform'));
  });

  it('refuses a one-class run (sampling off) with a clear message and publishes nothing', async () => {
    const out = join(tmp, 'refused');
    await expect(
      trainRun(source, {
        out,
        seed: 1,
        retrieval: { epochs: 1 },
        ranking: { epochs: 1 },
        preranking: { epochs: 1 },
        negatives: { ratio: 0 },
      }),
    ).rejects.toThrow(/one class \(only positives in \d+ rows\).*negative sampling is off.*nothing was published/);
    for (const model of ['two-tower', 'dlrm', 'preranker']) expect(versionsOf(out, model).filter((v) => /^\d+$/.test(v))).toEqual([]);
    expect(existsSync(join(out, 'reports'))).toBe(false);
  }, 60_000);

  it('the CLI says so and exits 1', async () => {
    const out = join(tmp, 'refused-cli');
    const result = await runNode(
      builtEntry('packages/trainer/dist/cli.js'),
      [
        'train',
        '--data',
        `files:${source.kind === 'files' ? source.dir : ''}`,
        '--out',
        out,
        '--ranking-negatives',
        '0',
        '--retrieval-epochs',
        '1',
      ],
      {},
      60_000,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ranking training refused: the train labels hold one class/);
  }, 70_000);
});
