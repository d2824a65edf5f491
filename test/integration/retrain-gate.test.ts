import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthetic, writeDatasetFiles } from '@recsys/data';
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
