import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { builtEntry, runNode } from '@recsys/testing';
import {
  type RunResult,
  type Tensor,
  evaluate,
  rankingFeeds,
  batchFeeds,
  prerankingFeeds,
  encodeSources,
  splitRows,
  trainDlrm,
  trainRun,
} from '@recsys/trainer';
import { buildTrainingSetup, generateSynthetic } from '@recsys/data';

const SMALL = { kind: 'synthetic' as const, options: { seed: 5, users: 400, items: 200, interactionsPerUser: 30 } };
const cli = () => builtEntry('packages/trainer/dist/cli.js');

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(b.length).toBe(a.length);
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!));
  return worst;
}

/** onnxruntime-node on a file from disk, independent of the trainer's runner. */
async function runFile(path: string, feeds: Record<string, Tensor>, output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path);
  try {
    const ortFeeds = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape)]),
    );
    return (await session.run(ortFeeds))[output]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('trainer: train, export, parity and evaluation on small synthetic data', () => {
  const out = mkdtempSync(join(tmpdir(), 'recsys-models-'));
  let run: RunResult;

  beforeAll(async () => {
    run = await trainRun(SMALL, {
      out,
      seed: 1,
      retrieval: { epochs: 4, batchSize: 128 },
      ranking: { epochs: 2 },
      preranking: { epochs: 2 },
    });
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('publishes one version per model: graphs, manifests with checksums, item vectors and a report', () => {
    expect(run.version).toBe('1');
    for (const name of ['two-tower', 'dlrm', 'preranker'] as const) {
      const dir = join(out, name, '1');
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      expect(manifest).toMatchObject({
        format: 'recsys.model.v1',
        name,
        version: '1',
        opset: 17,
        data: { fingerprint: run.manifests[name].data.fingerprint },
      });
      for (const graph of Object.values(manifest.graphs) as {
        file: string;
        sha256: string;
        inputs: unknown[];
        parityMaxAbsDiff: number;
      }[]) {
        const bytes = readFileSync(join(dir, graph.file));
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(graph.sha256);
        expect(graph.inputs.length).toBeGreaterThan(0);
        expect(graph.parityMaxAbsDiff).toBeLessThanOrEqual(1e-5);
      }
      expect(readdirSync(join(out, name))).toEqual(['1']);
    }
    const tt = run.manifests['two-tower'];
    expect(tt.featureSpecs.user!.features.map((f) => f.name)).toEqual(expect.arrayContaining(['user_id', 'recent_items']));
    expect(tt.graphs.user_tower!.inputs.map((i) => i.name)).toEqual([
      'user_categorical',
      'user_multi_recent_items',
      'user_multi_recent_items_weights',
    ]);
    expect(run.manifests.dlrm.featureSpecs.model!.features.map((f) => f.name)).toContain('recent_items');
    expect(readFileSync(join(out, 'two-tower', '1', 'item-vectors.f32')).byteLength).toBe(200 * tt.itemVectors!.dim * 4);
    expect(
      readFileSync(join(out, 'two-tower', '1', 'item-ids.txt'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(200);
    expect(run.manifests.preranker.dependsOn).toEqual({ 'two-tower': '1' });
    const report = JSON.parse(readFileSync(join(out, 'reports', '1', 'report.json'), 'utf8'));
    expect(report.models.map((m: { name: string }) => m.name)).toEqual(['two-tower', 'dlrm', 'preranker']);
    expect(report.models[0].retrieval.recallCurve).toHaveLength(100);
    expect(readFileSync(join(out, 'reports', '1', 'report.html'), 'utf8').match(/<svg/g)!.length).toBeGreaterThanOrEqual(6);
  });

  it('every exported file, run by onnxruntime-node, agrees with the trainer forward pass within 1e-5', async () => {
    const { setup, dlrm, twoTower, preranker, vectors } = run.trained;
    const rows = splitRows(setup, false).subarray(0, 300);

    const dlrmFeeds = rankingFeeds(dlrm.model.layout, setup, dlrm.sources, rows);
    const dlrmTs = evaluate([dlrm.model.probability], dlrmFeeds)[0]!.data;
    expect(maxDiff(dlrmTs, await runFile(join(out, 'dlrm', '1', 'model.onnx'), dlrmFeeds, 'probability'))).toBeLessThanOrEqual(1e-5);

    const users = Int32Array.from({ length: 100 }, (_, k) => k * 3);
    // The user tower reads the request context too (recent items): interaction rows serve as contexts here.
    const userFeeds = batchFeeds(twoTower.model.user.layout, twoTower.userSources, { user: users, context: users }, users.length, 'user_');
    const userTs = evaluate([twoTower.model.user.output], userFeeds)[0]!.data;
    expect(maxDiff(userTs, await runFile(join(out, 'two-tower', '1', 'user-tower.onnx'), userFeeds, 'embedding'))).toBeLessThanOrEqual(
      1e-5,
    );

    const items = Int32Array.from({ length: 200 }, (_, k) => k);
    const itemFeeds = batchFeeds(twoTower.model.item.layout, twoTower.itemSources, { item: items }, items.length, 'item_');
    const itemTs = evaluate([twoTower.model.item.output], itemFeeds)[0]!.data;
    expect(maxDiff(itemTs, await runFile(join(out, 'two-tower', '1', 'item-tower.onnx'), itemFeeds, 'embedding'))).toBeLessThanOrEqual(
      1e-5,
    );
    // The catalogue vectors written for the index builder are the item tower's output.
    const stored = new Float32Array(new Uint8Array(readFileSync(join(out, 'two-tower', '1', 'item-vectors.f32'))).buffer);
    expect(maxDiff(itemTs, stored)).toBeLessThanOrEqual(1e-5);

    const preFeeds = prerankingFeeds(preranker.layout, setup, encodeSources(setup), vectors, rows);
    const preTs = evaluate([preranker.model.probability], preFeeds)[0]!.data;
    expect(maxDiff(preTs, await runFile(join(out, 'preranker', '1', 'model.onnx'), preFeeds, 'probability'))).toBeLessThanOrEqual(1e-5);
  });

  it('learns the planted structure', () => {
    expect(run.manifests.dlrm.metrics.auc).toBeGreaterThan(0.7);
    expect(run.manifests.preranker.metrics.auc).toBeGreaterThan(0.65);
    // 10 of 200 items at random would find about 5% of a user's positives.
    expect(run.manifests['two-tower'].metrics['recall@10']).toBeGreaterThan(0.15);
    expect(run.report.models[0]!.baseline?.label).toBe('without logQ correction');
  });

  it('`recsys evaluate` reproduces the published metrics from the files alone', async () => {
    const result = await runNode(cli(), ['evaluate', '--models', out], {}, 60_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const evaluated = JSON.parse(result.stdout);
    expect(evaluated.version).toBe('1');
    expect(evaluated.dlrm.auc).toBeCloseTo(run.manifests.dlrm.metrics.auc!, 9);
    expect(evaluated.preranker.auc).toBeCloseTo(run.manifests.preranker.metrics.auc!, 9);
    expect(evaluated.twoTower.recall['recall@10']).toBeCloseTo(run.manifests['two-tower'].metrics['recall@10']!, 9);
    expect(evaluated.twoTower.itemVectorsMaxDiff).toBe(0);
  });
});

describe('trainer runs', () => {
  it('are repeatable: the same seed gives the same weights, another seed different ones', async () => {
    const setup = buildTrainingSetup(generateSynthetic({ seed: 9, users: 150, items: 80, interactionsPerUser: 10 }));
    const weights = async (seed: number) => {
      const trained = await trainDlrm(setup, { epochs: 1, batchSize: 64, lr: 1e-3, seed });
      return trained.model.params.map((p) => Array.from(p.data!));
    };
    const first = await weights(3);
    expect(await weights(3)).toEqual(first);
    expect(await weights(4)).not.toEqual(first);
  });

  it('train only the models asked for, and refuse a pre-ranker without its two-tower', async () => {
    const out = mkdtempSync(join(tmpdir(), 'recsys-some-models-'));
    try {
      const source = { kind: 'synthetic' as const, options: { seed: 9, users: 150, items: 80, interactionsPerUser: 10 } };
      await expect(trainRun(source, { out, models: ['preranker'] })).rejects.toThrow(/add 'two-tower'/);
      const run = await trainRun(source, { out, models: ['two-tower'], retrieval: { epochs: 1 }, compareUncorrected: false });
      expect([Object.keys(run.dirs), readdirSync(out).sort(), run.report.models.map((m) => m.name)]).toEqual([
        ['two-tower'],
        ['reports', 'two-tower'],
        ['two-tower'],
      ]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('train from files via the CLI; evaluate refuses data that changed since training', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recsys-cli-'));
    try {
      const data = join(dir, 'data');
      const synth = await runNode(
        cli(),
        ['data', 'synth', '--out', data, '--users', '120', '--items', '60', '--interactions-per-user', '10'],
        {},
        30_000,
      );
      expect(synth.code).toBe(0);
      expect(['interactions.csv', 'items.csv', 'users.jsonl'].every((f) => existsSync(join(data, f)))).toBe(true);
      const models = join(dir, 'models');
      const args = [
        'train',
        '--data',
        `files:${data}`,
        '--out',
        models,
        '--retrieval-epochs',
        '1',
        '--ranking-epochs',
        '1',
        '--preranking-epochs',
        '1',
        '--no-baseline',
      ];
      const trained = await runNode(cli(), args, {}, 60_000);
      expect(trained.code).toBe(0);
      expect(JSON.parse(trained.stdout)).toMatchObject({ version: '1', models: { dlrm: join(models, 'dlrm', '1') } });
      expect(trained.stderr).toMatch(/dlrm: epoch 1\/1 loss/);

      const user = readFileSync(join(data, 'interactions.csv'), 'utf8').split('\n')[1]!.split(',');
      appendFileSync(join(data, 'interactions.csv'), `${user[0]},${user[1]},1,1900000000\n`);
      const evaluated = await runNode(cli(), ['evaluate', '--models', models], {}, 30_000);
      expect(evaluated.code).toBe(1);
      expect(evaluated.stderr).toMatch(/has changed since version 1 was trained/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tune on the validation slice via the CLI: the choice is published and recorded, evaluate rebuilds the history', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recsys-tune-'));
    try {
      const models = join(dir, 'models');
      const tuned = await runNode(
        cli(),
        [
          'tune',
          '--data',
          'synthetic',
          '--users',
          '150',
          '--items',
          '80',
          '--interactions-per-user',
          '10',
          '--strong',
          '--user-history',
          '5',
          '--ranking-history',
          '5',
          '--negatives',
          '16',
          '--retrieval-batch-size',
          '32',
          '--temperatures',
          '0.1,0.2',
          '--retrieval-lrs',
          '0.01',
          '--retrieval-epochs',
          '2',
          '--ranking-lrs',
          '0.003',
          '--ranking-epochs',
          '2',
          '--preranking-epochs',
          '1',
          '--no-baseline',
          '--out',
          models,
        ],
        {},
        120_000,
      );
      expect({ code: tuned.code, stderr: tuned.code === 0 ? '' : tuned.stderr }).toEqual({ code: 0, stderr: '' });
      expect(tuned.stderr).toMatch(/tune two-tower: temperature 0.2, lr 0.01: best epoch \d/);
      const manifest = (name: string) => JSON.parse(readFileSync(join(models, name, '1', 'manifest.json'), 'utf8'));
      const tt = manifest('two-tower');
      const dlrm = manifest('dlrm');
      // Two temperatures × one lr × two epochs validated; the chosen point is the best validation score.
      expect(tt.training.tuning.grid).toHaveLength(4);
      const best = Math.max(...tt.training.tuning.grid.map((p: { score: number }) => p.score));
      expect(tt.training.tuning.score).toBe(best);
      expect(tt.training.epochs).toBe(tt.training.tuning.chosen.epochs);
      expect(tt.config.temperature).toBe(tt.training.tuning.chosen.temperature);
      expect(tt.training.sampledNegatives).toBe(16);
      expect(tt.training.batchSize).toBe(32);
      expect(dlrm.training.tuning.chosen).toEqual({ lr: 0.003, epochs: expect.any(Number) });
      expect(dlrm.config).toMatchObject({ interaction: 'dotdcn', crossLayers: 2 });
      expect(tt.data.preparation).toEqual({
        history: { tower: 5, ranking: 5, rankingItems: 'positive' },
        preset: 'strong (synthetic and files data)',
      });
      expect(tt.graphs.user_tower.inputs.map((i: { name: string }) => i.name)).toContain('user_multi_user_history');
      const evaluated = await runNode(cli(), ['evaluate', '--models', models], {}, 60_000);
      expect(evaluated.code).toBe(0);
      const answer = JSON.parse(evaluated.stdout);
      expect(answer.dlrm.auc).toBeCloseTo(dlrm.metrics.auc, 9);
      expect(answer.twoTower.recall['recall@10']).toBeCloseTo(tt.metrics['recall@10'], 9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('train with a validation slice keeps the best epoch and reports every epoch', async () => {
    const out = mkdtempSync(join(tmpdir(), 'recsys-validation-'));
    try {
      const source = { kind: 'synthetic' as const, options: { seed: 9, users: 150, items: 80, interactionsPerUser: 10 } };
      const run = await trainRun(source, {
        out,
        models: ['two-tower', 'dlrm'],
        retrieval: { epochs: 3, sampledNegatives: 8 },
        ranking: { epochs: 2, dlrm: { interaction: 'dcn' } },
        preparation: { validation: true, history: { tower: 4, ranking: 4, rankingItems: 'all' } },
        compareUncorrected: false,
      });
      for (const name of ['two-tower', 'dlrm'] as const) {
        const training = run.manifests[name]!.training as unknown as {
          validation: { epoch: number; score: number }[];
          bestEpoch: number;
          epochsRun: number;
        };
        expect(training.validation.map((v) => v.epoch)).toEqual(Array.from({ length: training.epochsRun }, (_, k) => k + 1));
        const best = training.validation.reduce((a, b) => (b.score > a.score ? b : a));
        expect(training.bestEpoch).toBe(best.epoch);
        const report = run.report.models.find((m) => m.name === name)!;
        expect(report.bestEpoch).toBe(best.epoch);
        expect(report.options).toBeDefined();
      }
      expect(run.manifests.dlrm!.data.preparation).toEqual({ validation: true, history: { tower: 4, ranking: 4, rankingItems: 'all' } });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the CLI names a bad flag and exits 2', async () => {
    const badInteraction = await runNode(cli(), ['train', '--interaction', 'cross'], {}, 10_000);
    expect(badInteraction.code).toBe(2);
    expect(badInteraction.stderr).toMatch(/--interaction: expected one of dot, dcn, dotdcn, got "cross"/);
    const side = await runNode(cli(), ['train', '--item-side'], {}, 10_000);
    expect(side.code).toBe(2);
    expect(side.stderr).toMatch(/--item-side: the strong item features are ML-100K's/);
    const patience = await runNode(cli(), ['train', '--patience', '2'], {}, 10_000);
    expect(patience.code).toBe(2);
    expect(patience.stderr).toMatch(/--patience: needs --validation/);
    const zero = await runNode(cli(), ['train', '--ranking-epochs', '0'], {}, 10_000);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--ranking-epochs: expected a whole number >= 1, got "0"/);
    const unknown = await runNode(cli(), ['train', '--data', 'nowhere'], {}, 10_000);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--data: expected synthetic, ml100k\[:DIR\] or files:DIR/);
    const missing = await runNode(cli(), ['evaluate', '--models', join(tmpdir(), 'no-such-models-dir')], {}, 10_000);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no model versions/);
  });
});
