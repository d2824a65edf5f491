import { type TrainingSetup, fingerprint } from '@recsys/data';
import { spawn } from 'node:child_process';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type DataSource, prepareSetup } from './data-source.js';
import { type VersionEvaluation, evaluateVersionOn, latestVersion } from './evaluate-version.js';
import { type ModelName, listVersions, nextVersion } from '@recsys/model-format';
import { MODEL_NAMES, type TrainRunOptions, rankingData, trainRun } from './pipeline.js';

/** How much worse than the serving version a candidate may score and still be published (absolute drops). */
export interface GateTolerances {
  /** DLRM's and the pre-ranker's AUC. */
  auc: number;
  /** The two-tower's Recall@k, every k evaluated (10, 50, 100). */
  recall: number;
}

export const GATE_TOLERANCES: GateTolerances = { auc: 0.01, recall: 0.01 };

/** Where a published version's index is built (the retrieval service's index CLI, as `recsys-up` runs it). */
export interface IndexBuild {
  /** The embedded index's directory; or `qdrant` (QDRANT_API_KEY passes through from the environment). */
  indexDir?: string;
  qdrant?: { url: string; collection: string };
  /** The feature service (item payload and the query sample), HOST:PORT. */
  features: string;
  /** Default: the workspace's services/retrieval/dist/index-cli.js. */
  cli?: string;
}

/** The newest window, exported from the event log by the offline events tool (`recsys-events export`) before training. */
export interface WindowExport {
  /** As the events tool takes them: Unix ms, an ISO-8601 date, "now" or "now-24h". */
  since: string;
  until: string;
  /** The feature service holding the log, HOST:PORT. */
  features: string;
  /** How long after an answer a click still makes its item a positive (the tool's --window, default 1h). */
  feedbackWindow?: string;
  /** Default: the workspace's packages/offline/dist/events-cli.js. */
  cli?: string;
}

export interface RetrainOptions {
  /** How the candidate is trained (seed, epochs, negatives, ...). */
  training?: Omit<TrainRunOptions, 'out' | 'version' | 'log' | 'models'>;
  /** The serving model root (services watch it). Candidates are staged under <models>/.candidates/. */
  root: string;
  /** The newest window of logged data (the export of the event log) as dataset files, with a time split. */
  window: DataSource | WindowExport;
  tolerances?: Partial<GateTolerances>;
  /** Build an index of the published two-tower (retrieval hot-reloads it); absent: no index is built. */
  index?: IndexBuild;
  /** Train the candidate from scratch instead of starting from the serving version's params. */
  coldStart?: boolean;
  /** Where the JSON report goes; default <models>/retrain/<candidate version>.json. */
  report?: string;
  log?: (line: string) => void;
}

export interface VersionMetrics {
  version: string;
  metrics: Partial<Record<ModelName, Record<string, number>>>;
}

export interface RetrainReport {
  createdAt: string;
  window: { source: DataSource; fingerprint: string; trainRows: number; testRows: number };
  tolerances: GateTolerances;
  /** Absent when nothing was serving (the first version is published as it is). */
  serving?: VersionMetrics;
  candidate: VersionMetrics;
  decision: 'published' | 'kept';
  /** The version the candidate's params started from (where shapes allow); absent: trained from scratch. */
  warmStartFrom?: string;
  /** Why the candidate was kept out (each metric beyond its tolerance), or why it was published. */
  reasons: string[];
  /** The version that serves after this run. */
  servingAfter: string;
  index?: { built: boolean; seconds: number; output: string };
  /** The event log's export the window came from (its summary: counts of positives, negatives, the split). */
  export?: { since: string; until: string; seconds: number; summary: unknown };
  seconds: number;
}

const CANDIDATES = '.candidates';

function metricsOf(e: VersionEvaluation): VersionMetrics['metrics'] {
  const pick = (o: object | undefined, keys: string[]) =>
    o ? Object.fromEntries(keys.map((k) => [k, (o as Record<string, number>)[k]!])) : undefined;
  const out: VersionMetrics['metrics'] = {};
  if (e.twoTower) out['two-tower'] = { ...e.twoTower.recall };
  const dlrm = pick(e.dlrm, ['auc', 'logloss']);
  if (dlrm) out.dlrm = dlrm;
  const pre = pick(e.preranker, ['auc', 'logloss']);
  if (pre) out.preranker = pre;
  return out;
}

/**
 * The gate: each metric the candidate scores more than its tolerance below the serving version refuses it.
 * A metric the serving version has and the candidate lacks (or is not finite) refuses it too.
 */
export function gateDecision(
  serving: VersionMetrics['metrics'],
  candidate: VersionMetrics['metrics'],
  tolerances: GateTolerances,
): { publish: boolean; reasons: string[] } {
  const reasons: string[] = [];
  const checks: [ModelName, string, number][] = [];
  for (const k of Object.keys(serving['two-tower'] ?? {})) checks.push(['two-tower', k, tolerances.recall]);
  if (serving.dlrm) checks.push(['dlrm', 'auc', tolerances.auc]);
  if (serving.preranker) checks.push(['preranker', 'auc', tolerances.auc]);
  for (const [model, metric, tolerance] of checks) {
    const was = serving[model]![metric]!;
    const now = candidate[model]?.[metric];
    if (now === undefined || !Number.isFinite(now)) reasons.push(`${model} ${metric}: the candidate has no finite value`);
    else if (Number.isFinite(was) && now < was - tolerance)
      reasons.push(`${model} ${metric} ${now.toFixed(4)} < serving ${was.toFixed(4)} - tolerance ${tolerance}`);
  }
  return { publish: reasons.length === 0, reasons };
}

/** A workspace tool's built entry (packages/trainer/dist/retrain.js -> <root>/<path>). */
function workspaceTool(path: string): string {
  return resolve(__dirname, '../../..', path);
}

/** Runs the retrieval service's index CLI on the published version; its output is kept for the report. */
function runIndexBuild(models: string, index: IndexBuild): Promise<{ seconds: number; output: string }> {
  const cli = index.cli ?? workspaceTool('services/retrieval/dist/index-cli.js');
  const target = index.qdrant
    ? ['--qdrant', index.qdrant.url, '--collection', index.qdrant.collection]
    : ['--index-dir', index.indexDir ?? ''];
  if (!index.qdrant && !index.indexDir) throw new Error('retrain: index: give indexDir or qdrant');
  return runTool('index build', cli, ['build', '--models', models, ...target, '--features', index.features]);
}

/** Exports the window from the event log into `dir` (the offline events tool, as `recsys-events export` runs). */
function runExport(dir: string, window: WindowExport): Promise<{ seconds: number; output: string }> {
  const cli = window.cli ?? workspaceTool('packages/offline/dist/events-cli.js');
  const args = ['export', '--since', window.since, '--until', window.until, '--out', dir, '--address', window.features];
  return runTool('events export', cli, window.feedbackWindow ? [...args, '--window', window.feedbackWindow] : args);
}

function runTool(label: string, cli: string, args: string[]): Promise<{ seconds: number; output: string }> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code === 0) resolvePromise({ seconds, output: output.trim() });
      else reject(new Error(`${label} (${cli}) exited ${code}: ${output.trim().slice(-2000)}`));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * One retraining round: trains all three models on the window as a candidate (staged beside the serving root,
 * invisible to the services), evaluates the candidate and the serving version on the same held-out rows of the
 * window, and publishes the candidate (moves it into the root, then builds its index) only when no gated metric
 * is worse beyond its tolerance; otherwise the serving version stays and the report says why.
 */
export async function retrain(options: RetrainOptions): Promise<RetrainReport> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const models = resolve(options.root);
  const tolerances = { ...GATE_TOLERANCES, ...options.tolerances };
  for (const [k, v] of Object.entries(tolerances))
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`retrain: tolerance ${k} must be a number >= 0, got ${v}`);
  const staging = join(models, CANDIDATES);
  const servingVersion = await latestVersion(models);
  const version = await nextVersion(models);
  // A candidate left by a crashed run under the same number is stale.
  await rm(staging, { recursive: true, force: true });

  let window: DataSource;
  let exported: RetrainReport['export'];
  if ('kind' in options.window) window = options.window;
  else {
    // Kept beside the versions: a published version's manifest names its data, which must stay as it was.
    const dir = join(models, 'windows', version);
    await rm(dir, { recursive: true, force: true });
    const run = await runExport(dir, options.window);
    exported = { since: options.window.since, until: options.window.until, seconds: run.seconds, summary: lastJson(run.output) };
    log(`retrain: exported the window ${options.window.since} .. ${options.window.until} in ${run.seconds.toFixed(1)} s`);
    window = { kind: 'files', dir, setup: { split: 'time' } };
  }
  log(`retrain: candidate version ${version} on the window; serving ${servingVersion ?? '(none)'}`);
  const warmStart = servingVersion !== undefined && !options.coldStart ? { root: models, version: servingVersion } : undefined;
  await trainRun(window, { ...options.training, ...(warmStart ? { warmStart } : {}), out: staging, version, log });

  // Both versions on the same rows: the window's held-out side, with the candidate's negatives if it sampled any.
  const seed = options.training?.seed ?? 0;
  const { setup, fit } = prepareSetup(window, options.training?.preparation);
  const ranking = rankingData(setup, fit, options.training?.negatives, seed).setup;
  const candidateEval = await evaluateVersionOn(staging, version, setup, ranking);
  const candidate: VersionMetrics = { version, metrics: metricsOf(candidateEval) };
  let serving: VersionMetrics | undefined;
  if (servingVersion !== undefined) {
    const servingEval = await evaluateVersionOn(models, servingVersion, setup, ranking);
    serving = { version: servingVersion, metrics: metricsOf(servingEval) };
  }
  const decision = serving
    ? gateDecision(serving.metrics, candidate.metrics, tolerances)
    : { publish: true, reasons: ['nothing was serving'] };
  if (decision.publish && serving) decision.reasons.push('no gated metric is worse than the serving version beyond its tolerance');

  const report: RetrainReport = {
    createdAt: new Date().toISOString(),
    ...(exported ? { export: exported } : {}),
    window: { source: window, fingerprint: fingerprint(setup), trainRows: 0, testRows: 0 },
    tolerances,
    ...(serving ? { serving } : {}),
    candidate,
    decision: decision.publish ? 'published' : 'kept',
    ...(warmStart ? { warmStartFrom: warmStart.version } : {}),
    reasons: decision.reasons,
    servingAfter: decision.publish ? version : servingVersion!,
    seconds: 0,
  };
  countRows(report, setup);

  if (decision.publish) {
    await publishCandidate(staging, models, version);
    log(`retrain: published version ${version} (${decision.reasons.join('; ')})`);
    if (options.index) {
      const built = await runIndexBuild(models, options.index);
      report.index = { built: true, ...built };
      log(`retrain: index built in ${built.seconds.toFixed(1)} s`);
    }
  } else {
    log(`retrain: kept version ${servingVersion}: ${decision.reasons.join('; ')}`);
    // The refused candidate's evaluation report stays: it explains the refusal.
    const refused = join(models, 'retrain', `${version}-candidate`);
    await rm(refused, { recursive: true, force: true });
    await mkdir(dirname(refused), { recursive: true });
    await rename(join(staging, 'reports', version), refused);
  }
  await rm(staging, { recursive: true, force: true });
  report.seconds = (performance.now() - started) / 1000;
  const path = options.report ?? join(models, 'retrain', `${version}.json`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

function countRows(report: RetrainReport, setup: TrainingSetup): void {
  let train = 0;
  for (const s of setup.split) if (s === 1) train++;
  report.window.trainRows = train;
  report.window.testRows = setup.split.length - train;
}

/** Moves the staged version into the serving root, the two-tower first (the pre-ranker depends on it), then its report. */
async function publishCandidate(staging: string, models: string, version: string): Promise<void> {
  for (const name of MODEL_NAMES) {
    const from = join(staging, name, version);
    if (!(await exists(from))) continue;
    if ((await listVersions(models, name)).includes(version)) throw new Error(`retrain: ${join(models, name, version)} exists already`);
    await mkdir(join(models, name), { recursive: true });
    await rename(from, join(models, name, version));
  }
  const report = join(staging, 'reports', version);
  if (await exists(report)) {
    await mkdir(join(models, 'reports'), { recursive: true });
    await rm(join(models, 'reports', version), { recursive: true, force: true });
    await rename(report, join(models, 'reports', version));
  }
}

/** The last line of a tool's output that parses as JSON (its summary), if any. */
function lastJson(output: string): unknown {
  for (const line of output.split('\n').reverse()) {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      // not the summary line
    }
  }
  return undefined;
}
