import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { common } from '@recsys/contracts';
import { buildTrainingSetup, generateSynthetic, writeDatasetFiles } from '@recsys/data';
import { loadFeatures } from '@recsys/offline';
import { startTestFeatureService } from '../harness/features';
import { type DataSource, type RetrainReport, trainRun } from '@recsys/trainer';
import { builtEntry, runNode } from '@recsys/testing';

const EPOCHS = ['--retrieval-epochs', '3', '--ranking-epochs', '2', '--preranking-epochs', '2'];

describe('recsys retrain: the gate publishes a better candidate and refuses a worse one', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'recsys-gate-'));
  const data = join(tmp, 'window');
  const models = join(tmp, 'models');
  const window: DataSource = { kind: 'files', dir: data, setup: { split: 'time' } };
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  beforeAll(async () => {
    writeDatasetFiles(generateSynthetic({ seed: 11, users: 400, items: 200, interactionsPerUser: 30 }), data);
    // The serving version: fitted on shuffled labels, so a sound candidate beats it.
    await trainRun(window, {
      out: models,
      seed: 3,
      retrieval: { epochs: 3 },
      ranking: { epochs: 2 },
      preranking: { epochs: 2 },
      compareUncorrected: false,
      shuffleTrainLabels: true,
    });
  }, 120_000);

  const retrain = async (extra: string[]): Promise<RetrainReport> => {
    const result = await runNode(
      builtEntry('packages/trainer/dist/cli.js'),
      ['retrain', '--models', models, '--data', `files:${data}`, ...EPOCHS, ...extra],
      {},
      120_000,
    );
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(result.stdout.trim().split('\n').pop()!) as RetrainReport;
  };
  const versions = (name: string) => readdirSync(join(models, name)).filter((v) => /^\d+$/.test(v));

  it('publishes a candidate that is better than the serving version, with both versions metrics in the report', async () => {
    const report = await retrain([]);
    expect(report.decision).toBe('published');
    expect(report.serving!.version).toBe('1');
    expect(report.candidate.version).toBe('2');
    expect(report.servingAfter).toBe('2');
    expect(report.candidate.metrics.dlrm!.auc).toBeGreaterThan(report.serving!.metrics.dlrm!.auc);
    expect(report.window.testRows).toBeGreaterThan(0);
    for (const name of ['two-tower', 'dlrm', 'preranker']) expect(versions(name)).toEqual(['1', '2']);
    expect(existsSync(join(models, '.candidates'))).toBe(false);
    expect(JSON.parse(readFileSync(join(models, 'retrain', '2.json'), 'utf8'))).toEqual(report);
    expect(existsSync(join(models, 'reports', '2', 'report.json'))).toBe(true);
  }, 150_000);

  it('refuses a candidate trained on shuffled labels: the serving version stays and the report says why', async () => {
    const report = await retrain(['--shuffle-labels']);
    expect(report.decision).toBe('kept');
    expect(report.serving!.version).toBe('2');
    expect(report.servingAfter).toBe('2');
    expect(report.reasons.join('\n')).toMatch(/dlrm auc \d\.\d+ < serving \d\.\d+ - tolerance 0\.01/);
    for (const name of ['two-tower', 'dlrm', 'preranker']) expect(versions(name)).toEqual(['1', '2']);
    expect(existsSync(join(models, 'retrain', '3-candidate', 'report.json'))).toBe(true);
  }, 150_000);

  it('names a bad tolerance', async () => {
    const result = await runNode(builtEntry('packages/trainer/dist/cli.js'), [
      'retrain',
      '--models',
      models,
      '--data',
      `files:${data}`,
      '--tolerance-auc=-1',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--tolerance-auc: expected a number >= 0, got "-1"');
  });
});

describe('recsys retrain --since --until: the window exported from the event log first', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'recsys-gate-log-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('exports the logged answers and feedback (label 0 shown, 1 clicked), trains on them and publishes the first version', async () => {
    const { client, service, stop } = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL! });
    try {
      // The synthetic world's impressions as served answers (one item each, a second apart, from three hours ago) and its clicks as feedback.
      const dataset = generateSynthetic({ seed: 12, users: 300, items: 150, interactionsPerUser: 25 });
      const setup = buildTrainingSetup(dataset, { historyLength: 0 });
      await loadFeatures(client, setup, { history: 'none' });
      const t0 = Date.now() - 3 * 3_600_000;
      const { interactions, users, items } = dataset;
      const versions = { retrievalModel: '0', index: '0', prerankingModel: '0', rankingModel: '0' };
      for (let from = 0; from < interactions.length; from += 1000) {
        const rows = Array.from({ length: Math.min(1000, interactions.length - from) }, (_, k) => from + k);
        await client.logImpressions({
          impressions: rows.map((r) => ({
            requestId: `r${r}`,
            userId: users.ids[interactions.user[r]!]!,
            timestampMs: BigInt(t0 + r * 1000),
            items: [{ itemId: items.ids[interactions.item[r]!]!, position: 0, score: 0.5 }],
            versions,
          })),
        });
        const clicked = rows.filter((r) => interactions.value[r] === 1);
        await client.recordFeedback({
          events: clicked.map((r) => ({
            eventId: `click-${r}`,
            userId: users.ids[interactions.user[r]!]!,
            itemId: items.ids[interactions.item[r]!]!,
            eventType: common.EventType.CLICK,
            timestampMs: BigInt(t0 + r * 1000 + 1000),
            requestId: `r${r}`,
          })),
        });
      }
      const models = join(tmp, 'models');
      const result = await runNode(
        builtEntry('packages/trainer/dist/cli.js'),
        [
          'retrain',
          '--models',
          models,
          '--since',
          'now-4h',
          '--until',
          'now',
          '--feedback-window',
          '1m',
          '--features',
          service.address,
          ...EPOCHS,
        ],
        {},
        120_000,
      );
      expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
      const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as RetrainReport;
      expect(report.decision).toBe('published');
      let clicks = 0;
      for (const v of interactions.value) clicks += v;
      const summary = report.export!.summary as { impressions: number; positives: number; negatives: number; pending: number };
      expect(summary).toMatchObject({ impressions: interactions.length, positives: clicks, pending: 0 });
      // Shown and not clicked is a negative, unless the same user clicked the same item (another answer) within the minute.
      expect(summary.negatives).toBeLessThanOrEqual(interactions.length - clicks);
      expect(summary.negatives).toBeGreaterThan(0.99 * (interactions.length - clicks));
      expect(report.window.source).toEqual({ kind: 'files', dir: join(models, 'windows', '1'), setup: { split: 'time' } });
      expect(report.candidate.metrics.dlrm!.auc).toBeGreaterThan(0.6);
      expect(existsSync(join(models, 'dlrm', '1', 'manifest.json'))).toBe(true);
    } finally {
      await stop();
    }
  }, 150_000);
});
