import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recallCurve, rocCurve, topK } from './metrics.js';
import {
  downsample,
  escapeHtml,
  niceTicks,
  renderReportHtml,
  writeReport,
  type EvaluationReport,
  type RankingEvaluation,
  type RetrievalEvaluation,
  type TrainingCurvePoint,
} from './report.js';

function trainingCurve(steps: number, examplesPerStep: number, stepsPerEpoch: number): TrainingCurvePoint[] {
  return Array.from({ length: steps }, (_, i) => ({
    step: i + 1,
    epoch: Math.floor(i / stepsPerEpoch),
    examples: (i + 1) * examplesPerStep,
    loss: 0.45 + 0.3 * Math.exp(-i / 500) + 0.01 * Math.sin(i),
    examplesPerS: 250_000 + 10_000 * Math.cos(i / 7),
  }));
}

function ranking(shift: number): RankingEvaluation {
  const n = 20_000;
  const labels = Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 1 : 0));
  const scores = labels.map((y, i) => ((i * 7919) % 1000) / 1000 + shift * y);
  const roc = rocCurve(labels, scores);
  return {
    auc: 0.8123,
    logloss: 0.4211,
    f1: 0.55,
    precision: 0.5,
    recall: 0.61,
    threshold: 0.31,
    roc: { fpr: roc.fpr, tpr: roc.tpr },
    testRows: n,
    positives: n / 5,
  };
}

function retrieval(users: number, boost: number): RetrievalEvaluation {
  const items = 2_000;
  const ranked = Array.from({ length: users }, (_, u) =>
    topK(
      Float32Array.from({ length: items }, (_, i) => ((i * 31 + u * 17) % 997) / 997),
      100,
    ),
  );
  const truth = ranked.map((r, u) => new Set([r[u % 7]!, r[(u * boost) % 90]!, items + 1]));
  const curve = recallCurve(ranked, truth);
  return {
    recall: { 'recall@10': curve[9]!, 'recall@50': curve[49]!, 'recall@100': curve[99]! },
    recallCurve: curve,
    usersEvaluated: users,
    corpusSize: items,
  };
}

function sampleReport(): EvaluationReport {
  return {
    createdAt: '2025-01-02T03:04:05.000Z',
    dataset: { name: 'movielens-1m', fingerprint: 'sha256:0123abcd', users: 6040, items: 3706, trainRows: 900_188, testRows: 100_021 },
    models: [
      {
        name: 'two-tower <b>&"',
        version: '1.0.0',
        kind: 'two-tower',
        trainExamplesPerS: 251_234,
        epochs: 3,
        trainingCurve: trainingCurve(20_000, 512, 7_000),
        retrieval: retrieval(200, 3),
        baseline: { label: "no logQ <i>'", retrieval: retrieval(200, 11) },
      },
      {
        name: 'dlrm',
        version: '1.0.0',
        kind: 'dlrm',
        trainExamplesPerS: 88_000.5,
        epochs: 2,
        trainingCurve: trainingCurve(3_000, 1024, 1_500),
        ranking: ranking(0.4),
      },
      {
        name: 'preranker',
        version: '0.3.1',
        kind: 'preranker',
        trainExamplesPerS: 1e6,
        epochs: 1,
        trainingCurve: trainingCurve(40, 4096, 40),
        ranking: ranking(0.2),
      },
    ],
  };
}

describe('writeReport', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-report-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes report.json and a self-contained report.html', async () => {
    const report = sampleReport();
    const target = join(dir, 'nested', 'models');
    const paths = await writeReport(target, report);
    expect(paths).toEqual({ json: join(target, 'report.json'), html: join(target, 'report.html') });

    expect(JSON.parse(await readFile(paths.json, 'utf8'))).toEqual(report);

    const html = await readFile(paths.html, 'utf8');
    expect(html).toBe(renderReportHtml(report));
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // Two-tower: recall, loss, throughput. DLRM and pre-ranker: ROC, loss, throughput.
    expect(html.match(/<svg[\s>]/g)).toHaveLength(9);
    expect(html.match(/<\/svg>/g)).toHaveLength(9);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/<link|@import|@font-face|<img|<iframe/i);
    expect(Buffer.byteLength(html)).toBeLessThan(200 * 1024);
  });

  it('escapes every string it puts in the page', () => {
    const html = renderReportHtml(sampleReport());
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<i>');
    expect(html).toContain('two-tower &lt;b&gt;&amp;&quot;');
    expect(html).toContain('no logQ &lt;i&gt;&#39;');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('draws the legends, axes and tables', () => {
    const html = renderReportHtml(sampleReport());
    expect(html).toContain('(AUC 0.8123)');
    expect(html).toContain('>chance<');
    expect(html).toContain('False positive rate');
    expect(html).toContain('Recall@k');
    expect(html).toContain('Examples/s');
    expect(html).toContain('<td>Recall@10</td>');
    expect(html).toContain('900,188');
    expect(html).toContain('sha256:0123abcd');
    expect(html).toContain('251,234');
    expect(html).toContain('>5k</text>'); // one unit per axis: 0, 5k, 10k, ...
    expect(html).toContain('>0.8</text>');
  });

  it('copes with missing curves and undefined metrics', () => {
    const report: EvaluationReport = {
      ...sampleReport(),
      models: [
        {
          name: 'empty',
          version: '0',
          kind: 'dlrm',
          trainExamplesPerS: NaN,
          epochs: 0,
          trainingCurve: [],
          ranking: { ...ranking(0.1), auc: NaN, roc: { fpr: [], tpr: [] } },
        },
      ],
    };
    const html = renderReportHtml(report);
    expect(html).toContain('ROC curve undefined');
    expect(html).toContain('No training curve recorded.');
    expect(html).toContain('n/a');
    expect(html).not.toContain('NaN');
    expect(renderReportHtml({ ...report, models: [] })).toContain('No models in this report.');
  });
});

describe('chart helpers', () => {
  it('downsamples evenly keeping both ends', () => {
    const items = Array.from({ length: 1001 }, (_, i) => i);
    expect(downsample(items, 5)).toEqual([0, 250, 500, 750, 1000]);
    expect(downsample([1, 2, 3], 5)).toEqual([1, 2, 3]);
  });

  it('picks round ticks covering the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 100, 6)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0.43, 0.77, 5)).toEqual([0.4, 0.5, 0.6, 0.7, 0.8]);
    expect(niceTicks(5, 5, 5)).toEqual([4, 4.5, 5, 5.5, 6]);
  });
});
