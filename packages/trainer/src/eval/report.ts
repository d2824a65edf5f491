// The evaluation report written beside the trained models: report.json (everything, as recorded) and
// report.html, a self-contained page (inline CSS and hand-drawn inline SVG, nothing fetched) for people.

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TrainingCurvePoint {
  step: number;
  epoch: number;
  examples: number;
  loss: number;
  examplesPerS: number;
}

export interface RankingEvaluation {
  auc: number;
  logloss: number;
  f1: number;
  precision: number;
  recall: number;
  threshold: number;
  roc: { fpr: number[]; tpr: number[] };
  testRows: number;
  positives: number;
}

export interface RetrievalEvaluation {
  /** Keyed 'recall@10', 'recall@50', ... */
  recall: Record<string, number>;
  /** Recall@k for k = 1..100 (index 0 is k = 1). */
  recallCurve: number[];
  usersEvaluated: number;
  corpusSize: number;
}

export interface ModelReport {
  name: string;
  version: string;
  kind: 'two-tower' | 'dlrm' | 'preranker';
  trainExamplesPerS: number;
  epochs: number;
  trainingCurve: TrainingCurvePoint[];
  ranking?: RankingEvaluation;
  retrieval?: RetrievalEvaluation;
  /** Recall@k of recommending the most popular train items (the user's own excluded), beside every Recall@k curve. */
  popularity?: RetrievalEvaluation;
  /** E.g. the two-tower without logQ correction, for comparison. */
  baseline?: { label: string; retrieval?: RetrievalEvaluation; ranking?: RankingEvaluation };
  /** The settings the model was trained with (architecture, negatives, history, learning rate). */
  options?: Record<string, unknown>;
  /** Per-epoch metrics on the validation slice, when one was held out; the model keeps bestEpoch. */
  validation?: { epoch: number; score: number; metrics: Record<string, number> }[];
  bestEpoch?: number;
}

export interface EvaluationReport {
  createdAt: string;
  dataset: { name: string; fingerprint: string; users: number; items: number; trainRows: number; testRows: number };
  models: ModelReport[];
}

/** Writes report.json (pretty JSON, the full report) and report.html into dir (created if missing); returns their paths. */
export async function writeReport(dir: string, report: EvaluationReport): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  await writeAtomically(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeAtomically(html, renderReportHtml(report));
  return { json, html };
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, 'utf8');
  await rename(tmp, path);
}

// ---------------------------------------------------------------------------------------------------------
// HTML

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];
const MAX_CHART_POINTS = 400;

/** The reports' stylesheet (inline in every report page). */
export const REPORT_CSS = `
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#fff;--panel:#f9fafb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px;max-width:1240px;margin:auto}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-top:16px;border-top:1px solid var(--line)}h3{font-size:14px;margin:16px 0 6px}
.muted{color:var(--muted)}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:var(--panel);font-weight:600}
.better{color:#15803d}.worse{color:#b91c1c}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px}
figcaption{font-weight:600;font-size:13px;margin:0 0 4px 4px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:var(--fg)}
.grid line{stroke:var(--line)}.axis line,.axis path{stroke:#9ca3af}.series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.note{background:var(--panel);border:1px dashed var(--line);padding:8px 12px;border-radius:6px;display:inline-block}
`;

/** The report as one self-contained HTML page: inline CSS and inline SVG, no scripts, fonts or network. */
export function renderReportHtml(report: EvaluationReport): string {
  const d = report.dataset;
  const title = `Evaluation report: ${d.name}`;
  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${REPORT_CSS.trim()}</style>`,
    '</head><body>',
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="muted">Created ${escapeHtml(report.createdAt)} · ${report.models.length} model${report.models.length === 1 ? '' : 's'}</p>`,
    '<h3>Dataset</h3>',
    table(
      ['Name', 'Fingerprint', 'Users', 'Items', 'Train rows', 'Test rows'],
      [
        [
          escapeHtml(d.name),
          `<code>${escapeHtml(d.fingerprint)}</code>`,
          count(d.users),
          count(d.items),
          count(d.trainRows),
          count(d.testRows),
        ],
      ],
    ),
    summaryTable(report.models),
    ...report.models.map((m, i) => modelSection(m, i)),
    '</body></html>',
    '',
  ];
  return parts.join('\n');
}

function summaryTable(models: ModelReport[]): string {
  if (models.length === 0) return '<p class="note">No models in this report.</p>';
  const recallKeys = sortedRecallKeys(models.flatMap((m) => (m.retrieval ? Object.keys(m.retrieval.recall) : [])));
  const head = ['Model', 'Kind', 'Version', 'Epochs', 'Train ex/s', 'AUC', 'Log loss', 'F1', ...recallKeys.map(recallLabel)];
  const rows = models.map((m, i) => [
    `<a href="#model-${i}">${escapeHtml(m.name)}</a>`,
    escapeHtml(m.kind),
    escapeHtml(m.version),
    count(m.epochs),
    count(m.trainExamplesPerS),
    m.ranking ? num(m.ranking.auc, 4) : '–',
    m.ranking ? num(m.ranking.logloss, 4) : '–',
    m.ranking ? num(m.ranking.f1, 4) : '–',
    ...recallKeys.map((k) => (m.retrieval && k in m.retrieval.recall ? num(m.retrieval.recall[k], 4) : '–')),
  ]);
  return `<h3>Models</h3>\n${table(head, rows)}`;
}

function modelSection(m: ModelReport, index: number): string {
  const out = [
    `<section id="model-${index}">`,
    `<h2>${escapeHtml(m.name)} <span class="muted">${escapeHtml(m.kind)} · ${escapeHtml(m.version)}</span></h2>`,
    metricsTable(m),
    ...(m.options ? [optionsTable(m.options)] : []),
    ...(m.validation?.length ? [validationTable(m)] : []),
  ];
  const charts: string[] = [];
  if (m.ranking) charts.push(rocChart(m));
  if (m.retrieval) charts.push(recallChart(m));
  charts.push(...trainingCharts(m));
  out.push(`<div class="charts">\n${charts.join('\n')}\n</div>`, '</section>');
  return out.join('\n');
}

/** The settings the model was trained with, one row each. */
function optionsTable(options: Record<string, unknown>): string {
  const text = (v: unknown) => escapeHtml(typeof v === 'object' ? JSON.stringify(v) : String(v));
  return table(
    ['Setting', 'Value'],
    Object.entries(options).map(([k, v]) => [escapeHtml(k), text(v)]),
  );
}

/** Validation metrics per epoch; the kept (best) epoch marked. */
function validationTable(m: ModelReport): string {
  const points = m.validation!;
  const keys = [...new Set(points.flatMap((p) => Object.keys(p.metrics)))];
  return table(
    ['Epoch', 'Validation score', ...keys.map(escapeHtml)],
    points.map((p) => [
      `${p.epoch}${p.epoch === m.bestEpoch ? ' (kept)' : ''}`,
      p.score.toFixed(4),
      ...keys.map((k) => (p.metrics[k] === undefined ? '' : p.metrics[k].toFixed(4))),
    ]),
  );
}

type Direction = 'higher' | 'lower' | 'none';
interface MetricRow {
  label: string;
  model: number | undefined;
  baseline?: number | undefined;
  digits: number;
  direction: Direction;
  isCount?: boolean;
}

function metricsTable(m: ModelReport): string {
  const b = m.baseline;
  const rows: MetricRow[] = [
    { label: 'Epochs', model: m.epochs, digits: 0, direction: 'none', isCount: true },
    { label: 'Train examples/s', model: m.trainExamplesPerS, digits: 0, direction: 'none', isCount: true },
  ];
  const steps = m.trainingCurve;
  if (steps.length > 0) {
    const last = steps[steps.length - 1]!;
    rows.push(
      { label: 'Steps', model: last.step, digits: 0, direction: 'none', isCount: true },
      { label: 'Examples seen', model: last.examples, digits: 0, direction: 'none', isCount: true },
      { label: 'Final loss', model: last.loss, digits: 4, direction: 'none' },
    );
  }
  if (m.ranking || b?.ranking) {
    const r = m.ranking;
    const br = b?.ranking;
    rows.push(
      { label: 'AUC', model: r?.auc, baseline: br?.auc, digits: 4, direction: 'higher' },
      { label: 'Log loss', model: r?.logloss, baseline: br?.logloss, digits: 4, direction: 'lower' },
      { label: 'F1', model: r?.f1, baseline: br?.f1, digits: 4, direction: 'higher' },
      { label: 'Precision', model: r?.precision, baseline: br?.precision, digits: 4, direction: 'higher' },
      { label: 'Recall', model: r?.recall, baseline: br?.recall, digits: 4, direction: 'higher' },
      { label: 'F1 threshold', model: r?.threshold, baseline: br?.threshold, digits: 2, direction: 'none' },
      { label: 'Test rows', model: r?.testRows, baseline: br?.testRows, digits: 0, direction: 'none', isCount: true },
      { label: 'Positives', model: r?.positives, baseline: br?.positives, digits: 0, direction: 'none', isCount: true },
      {
        label: 'Positive rate',
        model: r && r.positives / r.testRows,
        baseline: br && br.positives / br.testRows,
        digits: 4,
        direction: 'none',
      },
    );
  }
  if (m.retrieval || b?.retrieval) {
    const r = m.retrieval;
    const br = b?.retrieval;
    const keys = sortedRecallKeys([...Object.keys(r?.recall ?? {}), ...Object.keys(br?.recall ?? {})]);
    for (const k of keys)
      rows.push({ label: recallLabel(k), model: r?.recall[k], baseline: br?.recall[k], digits: 4, direction: 'higher' });
    const p = m.popularity;
    if (p)
      for (const k of sortedRecallKeys(Object.keys(p.recall)))
        rows.push({ label: `${recallLabel(k)} (popularity baseline)`, model: p.recall[k], digits: 4, direction: 'none' });
    rows.push(
      { label: 'Users evaluated', model: r?.usersEvaluated, baseline: br?.usersEvaluated, digits: 0, direction: 'none', isCount: true },
      { label: 'Corpus size', model: r?.corpusSize, baseline: br?.corpusSize, digits: 0, direction: 'none', isCount: true },
    );
  }
  const withBaseline = b !== undefined && (b.ranking !== undefined || b.retrieval !== undefined);
  const head = withBaseline ? ['Metric', escapeHtml(m.name), escapeHtml(b!.label), 'Δ'] : ['Metric', 'Value'];
  const fmt = (r: MetricRow, v: number | undefined): string => (v === undefined ? '–' : r.isCount ? count(v) : num(v, r.digits));
  const body = rows.map((r) => {
    const cells = [escapeHtml(r.label), fmt(r, r.model)];
    if (withBaseline) cells.push(fmt(r, r.baseline), delta(r));
    return cells;
  });
  return table(head, body);
}

function delta(r: MetricRow): string {
  if (r.model === undefined || r.baseline === undefined || !Number.isFinite(r.model) || !Number.isFinite(r.baseline)) return '';
  if (r.direction === 'none') return '';
  const d = r.model - r.baseline;
  const cls = d === 0 ? '' : d > 0 === (r.direction === 'higher') ? 'better' : 'worse';
  const text = `${d > 0 ? '+' : d < 0 ? '−' : '±'}${Math.abs(d).toFixed(r.digits)}`;
  return cls ? `<span class="${cls}">${text}</span>` : text;
}

/** Cells are HTML already (escape before). */
function table(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function sortedRecallKeys(keys: string[]): string[] {
  const k = (s: string): number => {
    const m = /(\d+)\s*$/.exec(s);
    return m ? Number(m[1]) : Infinity;
  };
  return [...new Set(keys)].sort((a, b) => k(a) - k(b) || a.localeCompare(b));
}

function recallLabel(key: string): string {
  const m = /^recall@(\d+)$/i.exec(key);
  return m ? `Recall@${m[1]}` : escapeHtml(key);
}

// ---------------------------------------------------------------------------------------------------------
// Charts

function rocChart(m: ModelReport): string {
  const r = m.ranking!;
  const points = zip(r.roc.fpr, r.roc.tpr);
  if (points.length < 2) return note('ROC curve', 'ROC curve undefined (the test set has a single class).');
  const series: Series[] = [{ label: `${m.name} (AUC ${num(r.auc, 4)})`, points, color: COLORS[0]! }];
  const b = m.baseline?.ranking;
  if (b && b.roc.fpr.length >= 2) {
    series.push({ label: `${m.baseline!.label} (AUC ${num(b.auc, 4)})`, points: zip(b.roc.fpr, b.roc.tpr), color: COLORS[1]! });
  }
  series.push({
    label: 'chance',
    points: [
      [0, 0],
      [1, 1],
    ],
    color: '#9ca3af',
    dashed: true,
  });
  return lineChart({
    caption: 'ROC curve',
    xLabel: 'False positive rate',
    yLabel: 'True positive rate',
    series,
    x: [0, 1],
    y: [0, 1],
    legend: 'bottom-right',
    square: true,
  });
}

function recallChart(m: ModelReport): string {
  const r = m.retrieval!;
  const toPoints = (curve: number[]): Array<[number, number]> => curve.map((v, i) => [i + 1, v]);
  const series: Series[] = [{ label: m.name, points: toPoints(r.recallCurve), color: COLORS[0]! }];
  const b = m.baseline?.retrieval;
  if (b && b.recallCurve.length > 0)
    series.push({ label: m.baseline!.label, points: toPoints(b.recallCurve), color: COLORS[1]!, dashed: true });
  const p = m.popularity;
  if (p && p.recallCurve.length > 0)
    series.push({ label: 'popularity baseline', points: toPoints(p.recallCurve), color: '#9ca3af', dashed: true });
  if (series.every((s) => s.points.length === 0)) return note('Recall@k', 'No recall curve recorded.');
  const maxK = Math.max(...series.map((s) => s.points.length));
  return lineChart({
    caption: 'Recall@k',
    xLabel: 'k (retrieved items)',
    yLabel: 'Recall@k',
    series,
    x: [1, Math.max(2, maxK)],
    y: [0, 1],
    legend: 'bottom-right',
  });
}

function trainingCharts(m: ModelReport): string[] {
  const curve = m.trainingCurve;
  if (curve.length === 0) return [note('Training loss', 'No training curve recorded.')];
  const sampled = downsample(curve, MAX_CHART_POINTS);
  const epochMarks: number[] = [];
  for (let i = 1; i < curve.length; i++) if (curve[i]!.epoch !== curve[i - 1]!.epoch) epochMarks.push(curve[i]!.step);
  const loss = lineChart({
    caption: 'Training loss',
    xLabel: 'Step',
    yLabel: 'Loss',
    series: [{ label: 'loss', points: sampled.map((p) => [p.step, p.loss]), color: COLORS[2]! }],
    legend: 'top-right',
    verticalMarks: epochMarks.length <= 50 ? epochMarks : [],
  });
  const throughput = lineChart({
    caption: 'Throughput',
    xLabel: 'Step',
    yLabel: 'Examples/s',
    series: [
      { label: 'examples/s', points: sampled.map((p) => [p.step, p.examplesPerS]), color: COLORS[3]! },
      ...(Number.isFinite(m.trainExamplesPerS) && m.trainExamplesPerS > 0
        ? [
            {
              label: `overall ${count(m.trainExamplesPerS)}/s`,
              points: [
                [curve[0]!.step, m.trainExamplesPerS],
                [curve[curve.length - 1]!.step, m.trainExamplesPerS],
              ] as Array<[number, number]>,
              color: '#9ca3af',
              dashed: true,
            },
          ]
        : []),
    ],
    legend: 'bottom-right',
    yFromZero: true,
  });
  return [loss, throughput];
}

function note(caption: string, text: string): string {
  return `<figure><figcaption>${escapeHtml(caption)}</figcaption><p class="note">${escapeHtml(text)}</p></figure>`;
}

/** At most max items, evenly spaced by position, always keeping the first and the last. */
export function downsample<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  const last = items.length - 1;
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * last) / (max - 1))]!);
  return out;
}

function zip(xs: number[], ys: number[]): Array<[number, number]> {
  const n = Math.min(xs.length, ys.length);
  const pts = Array.from({ length: n }, (_, i): [number, number] => [xs[i]!, ys[i]!]);
  return downsample(pts, MAX_CHART_POINTS);
}

export interface Series {
  label: string;
  points: Array<[number, number]>;
  color: string;
  dashed?: boolean;
  /** A dot at every point (for curves over a few measured settings). */
  markers?: boolean;
}

export interface ChartSpec {
  caption: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed domains; otherwise the data's, rounded to nice ticks. */
  x?: [number, number];
  y?: [number, number];
  yFromZero?: boolean;
  legend: 'top-right' | 'bottom-right';
  square?: boolean;
  verticalMarks?: number[];
}

const r1 = (v: number): string => (Math.round(v * 10) / 10).toString();

/** One inline SVG line chart in a figure (the reports' one chart drawer). */
export function lineChart(spec: ChartSpec): string {
  const width = spec.square ? 400 : 520;
  const height = spec.square ? 380 : 300;
  const ml = 58;
  const mr = 16;
  const mt = 12;
  const mb = 44;
  const pw = width - ml - mr;
  const ph = height - mt - mb;

  const finite = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = finite.map((p) => p[0]);
  const ys = finite.map((p) => p[1]);
  const xDomain = spec.x ?? extent(xs);
  const yData = extent(ys);
  const yTicks = spec.y ? niceTicks(spec.y[0], spec.y[1], 5) : niceTicks(spec.yFromZero ? Math.min(0, yData[0]) : yData[0], yData[1], 5);
  const xTicks = niceTicks(xDomain[0], xDomain[1], spec.square ? 5 : 6);
  const [x0, x1] = spec.x ?? [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const [y0, y1] = spec.y ?? [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const sx = (v: number): number => ml + ((v - x0) / (x1 - x0 || 1)) * pw;
  const sy = (v: number): number => mt + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
  const inX = (v: number): boolean => v >= Math.min(x0, x1) - 1e-9 && v <= Math.max(x0, x1) + 1e-9;
  const inY = (v: number): boolean => v >= Math.min(y0, y1) - 1e-9 && v <= Math.max(y0, y1) + 1e-9;
  const xTick = tickFormatter(xTicks);
  const yTick = tickFormatter(yTicks);

  const out: string[] = [];
  const label = `${spec.caption}: ${spec.yLabel} by ${spec.xLabel}`;
  out.push(`<figure><figcaption>${escapeHtml(spec.caption)}</figcaption>`);
  out.push(`<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(label)}">`);
  out.push(`<title>${escapeHtml(label)}</title>`);
  out.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="#fff"/>`);

  // Grid and ticks.
  const grid: string[] = [];
  const axis: string[] = [];
  for (const t of xTicks.filter(inX)) {
    const x = r1(sx(t));
    grid.push(`<line x1="${x}" y1="${mt}" x2="${x}" y2="${mt + ph}"/>`);
    axis.push(`<line x1="${x}" y1="${mt + ph}" x2="${x}" y2="${mt + ph + 5}"/>`);
    axis.push(`<text x="${x}" y="${mt + ph + 17}" text-anchor="middle">${escapeHtml(xTick(t))}</text>`);
  }
  for (const t of yTicks.filter(inY)) {
    const y = r1(sy(t));
    grid.push(`<line x1="${ml}" y1="${y}" x2="${ml + pw}" y2="${y}"/>`);
    axis.push(`<line x1="${ml - 5}" y1="${y}" x2="${ml}" y2="${y}"/>`);
    axis.push(`<text x="${ml - 8}" y="${y}" dy="0.32em" text-anchor="end">${escapeHtml(yTick(t))}</text>`);
  }
  out.push(`<g class="grid">${grid.join('')}</g>`);
  for (const mark of spec.verticalMarks ?? []) {
    if (!inX(mark)) continue;
    const x = r1(sx(mark));
    out.push(
      `<line x1="${x}" y1="${mt}" x2="${x}" y2="${mt + ph}" stroke="#cbd5e1" stroke-dasharray="2 3"><title>epoch boundary</title></line>`,
    );
  }
  out.push(`<g class="axis"><path d="M${ml},${mt}V${mt + ph}H${ml + pw}" fill="none"/>${axis.join('')}</g>`);
  out.push(`<text x="${r1(ml + pw / 2)}" y="${height - 6}" text-anchor="middle">${escapeHtml(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${r1(mt + ph / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(spec.yLabel)}</text>`);

  // Series (the domains cover the data); NaN or infinite values break the line.
  out.push('<g>');
  for (const s of spec.series) {
    const d = pathData(s.points, sx, sy);
    if (!d) continue;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<path class="series" d="${d}" fill="none" stroke="${s.color}"${dash}/>`);
    if (s.markers)
      for (const [x, y] of s.points)
        if (Number.isFinite(x) && Number.isFinite(y)) out.push(`<circle cx="${r1(sx(x))}" cy="${r1(sy(y))}" r="3" fill="${s.color}"/>`);
  }
  out.push('</g>');

  // Legend.
  const rowH = 16;
  const legendW = Math.min(pw - 8, 24 + 6.2 * Math.max(...spec.series.map((s) => s.label.length)));
  const legendH = 6 + rowH * spec.series.length;
  const lx = ml + pw - legendW - 6;
  const ly = spec.legend === 'top-right' ? mt + 6 : mt + ph - legendH - 6;
  out.push(
    `<g><rect x="${r1(lx)}" y="${r1(ly)}" width="${r1(legendW)}" height="${legendH}" fill="#fff" fill-opacity="0.9" stroke="#e5e7eb"/>`,
  );
  spec.series.forEach((s, i) => {
    const y = ly + 3 + rowH * i + rowH / 2;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<line x1="${r1(lx + 6)}" y1="${r1(y)}" x2="${r1(lx + 22)}" y2="${r1(y)}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${r1(lx + 27)}" y="${r1(y)}" dy="0.32em">${escapeHtml(s.label)}</text>`);
  });
  out.push('</g></svg></figure>');
  return out.join('\n');
}

function pathData(points: Array<[number, number]>, sx: (v: number) => number, sy: (v: number) => number): string {
  let d = '';
  let pen = false;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${r1(sx(x))},${r1(sy(y))}`;
    pen = true;
  }
  return d;
}

function extent(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/** Evenly spaced round ticks (1, 2 or 5 × 10^n apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target: number): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const start = Math.floor(lo / step + 1e-9);
  const end = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = start; i <= end; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Tick labels of one axis, all in the same unit (k, M, G) picked from the largest tick. */
function tickFormatter(ticks: number[]): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  const top = Math.max(...ticks.map(Math.abs));
  const [div, suffix] = top >= 1e9 ? [1e9, 'G'] : top >= 1e6 ? [1e6, 'M'] : top >= 1e4 ? [1e3, 'k'] : [1, ''];
  return (v) => `${trim(v / div, step / div)}${v === 0 ? '' : suffix}`;
}

function trim(v: number, step: number): string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

// ---------------------------------------------------------------------------------------------------------
// Number formatting

function num(v: number | undefined, digits: number): string {
  if (v === undefined || v === null || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  return v.toFixed(digits);
}

/** Integers with thousands separators (fractional values are rounded). */
function count(v: number): string {
  if (v === undefined || v === null || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  const s = Math.round(Math.abs(v))
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return v < 0 ? `−${s}` : s;
}
