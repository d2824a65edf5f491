import type { Dataset } from '@recsys/data';
import { type DataSource, type GateTolerances, type RetrainOptions, type RetrainReport, latestVersion, retrain } from '@recsys/trainer';
import { join } from 'node:path';
import { features } from '@recsys/contracts';
import { loadDatasetFiles, writeDatasetFiles } from '@recsys/data';
import { type EventsExportSummary, exportEvents } from '@recsys/offline';
import { createServiceClient } from '@recsys/service-kit';
import { type SimulatedImpression, type SimulationResult, simulate, writeWindow } from './simulator.js';
import type { SimulatedWorld } from './world.js';

export interface LoopOptions {
  gateway: string;
  apiKey?: string;
  world: SimulatedWorld;
  /** The data the first served version was trained on; the window is it plus everything simulated since. */
  base: Dataset;
  /** The serving model root (the services watch it). */
  models: string;
  /** Where the simulator's own record is written as the window, a directory per round (without `exportWindow`). */
  windowDir: string;
  /**
   * The window from the event log instead of the simulator's record: the events export over what the loop served
   * (since the loop's start), after the base data (the log alone holds only what the served versions chose to show).
   * The gateway must log its answers for this (the feature service's event log).
   */
  exportWindow?: { features: string; feedbackWindowMs: number };
  /** The index the published two-tower is built into (retrieval reloads it), and the feature service it reads. */
  index?: RetrainOptions['index'];
  rounds: number;
  requestsPerRound: number;
  seed: number;
  /** Simulated time of the first round; each round is one simulated day. */
  startTime: number;
  training?: RetrainOptions['training'];
  tolerances?: Partial<GateTolerances>;
  /** Resolves once every stage serves `version` (the caller knows how to ask its services). */
  waitForServing: (version: string) => Promise<void>;
  /** Finally, a candidate trained on shuffled labels goes to the gate, which must refuse it. */
  checkBrokenCandidate?: boolean;
  log?: (line: string) => void;
}

export interface LoopRound {
  round: number;
  /** The version served while this round's traffic was simulated. */
  served: string;
  simulation: Omit<SimulationResult, 'shown'>;
  /** The event log's export the round's retraining read (with exportWindow). */
  export?: EventsExportSummary;
  /** The retraining after the round's traffic (absent for the final measuring round). */
  retrain?: Pick<RetrainReport, 'decision' | 'reasons' | 'servingAfter' | 'candidate' | 'serving'>;
}

export interface LoopResult {
  rounds: LoopRound[];
  /** CTR@k of the served version in each simulated round: rounds + 1 entries (the last measures the last retrain). */
  ctrByRound: number[];
  broken?: Pick<RetrainReport, 'decision' | 'reasons' | 'servingAfter'>;
}

const DAY = 86_400;

/**
 * Rounds of simulate → retrain → publish: each round's simulated traffic (served by the current version) joins the
 * window, the gate retrains on it and publishes when the candidate is not worse; one more round measures the last
 * version. With checkBrokenCandidate, a candidate fitted on shuffled labels is then offered to the gate.
 */
export async function runLoop(options: LoopOptions): Promise<LoopResult> {
  const log = options.log ?? (() => undefined);
  const since = String(Date.now());
  const shown: SimulatedImpression[] = [];
  const rounds: LoopRound[] = [];
  let served = await currentVersion(options);
  for (let round = 0; round <= options.rounds; round++) {
    const simulation = await simulate({
      gateway: options.gateway,
      apiKey: options.apiKey,
      world: options.world,
      requests: options.requestsPerRound,
      seed: options.seed * 1000 + round,
      startTime: options.startTime + round * DAY,
      seconds: DAY,
      // The event log's export joins and splits by the times it logged: the feedback carries no simulated time then.
      realTime: options.exportWindow !== undefined,
    });
    if (simulation.failedRequests > 0.05 * simulation.requests)
      throw new Error(`round ${round}: ${simulation.failedRequests} of ${simulation.requests} requests failed`);
    shown.push(...simulation.shown);
    const summary: LoopRound['simulation'] = { ...simulation };
    delete (summary as Partial<SimulationResult>).shown;
    const entry: LoopRound = { round, served, simulation: summary };
    log(
      `round ${round}: version ${served} served ${summary.impressions} impressions, CTR@10 ${summary.ctrAtK.toFixed(4)}, conversion ${summary.conversion.toFixed(4)}`,
    );
    rounds.push(entry);
    if (round === options.rounds) break;
    const window = await windowOf(options, shown, `round-${round}`, since);
    if (window.exported) entry.export = window.exported;
    const report = await retrain({
      root: options.models,
      window: window.source,
      training: { seed: options.seed + round, compareUncorrected: false, ...options.training },
      ...(options.tolerances ? { tolerances: options.tolerances } : {}),
      ...(options.index ? { index: options.index } : {}),
      log,
    });
    entry.retrain = pickReport(report);
    log(`round ${round}: gate ${report.decision} candidate ${report.candidate.version} (${report.reasons.join('; ')})`);
    log(
      `round ${round}: candidate ${metricsLine(report.candidate.metrics)}; serving ${report.serving ? metricsLine(report.serving.metrics) : '(none)'}`,
    );
    if (report.decision === 'published') {
      await options.waitForServing(report.servingAfter);
      served = report.servingAfter;
    }
  }
  const result: LoopResult = { rounds, ctrByRound: rounds.map((r) => r.simulation.ctrAtK) };
  if (options.checkBrokenCandidate) {
    const report = await retrain({
      root: options.models,
      window: (await windowOf(options, shown, 'broken', since)).source,
      training: { seed: options.seed, compareUncorrected: false, ...options.training, shuffleTrainLabels: true },
      // From scratch: the fault is the labels alone, not a blend with the serving version's params.
      coldStart: true,
      ...(options.tolerances ? { tolerances: options.tolerances } : {}),
      ...(options.index ? { index: options.index } : {}),
      log,
    });
    result.broken = { decision: report.decision, reasons: report.reasons, servingAfter: report.servingAfter };
    log(`broken candidate (shuffled labels): gate ${report.decision} (${report.reasons.join('; ')})`);
  }
  return result;
}

/** The window a round retrains on: the event log's export since the loop started, or the simulator's own record. */
async function windowOf(
  options: LoopOptions,
  shown: SimulatedImpression[],
  name: string,
  since: string,
): Promise<{ source: DataSource; exported?: EventsExportSummary }> {
  const exported = options.exportWindow;
  const dir = join(options.windowDir, name);
  if (!exported) {
    writeWindow(dir, options.base, shown);
    return { source: { kind: 'files', dir, setup: { split: 'time' } } };
  }
  // The last answers' feedback windows end first, so none of their items is left out as pending.
  await new Promise((done) => setTimeout(done, exported.feedbackWindowMs + 100));
  const client = createServiceClient(features.FeatureService, exported.features, { defaultTimeoutMs: 30_000 });
  let summary: EventsExportSummary;
  try {
    const logged = join(dir, 'log');
    summary = await exportEvents(client, {
      sinceMs: Number(since),
      untilMs: Date.now(),
      outDir: logged,
      windowMs: exported.feedbackWindowMs,
    });
    // The data the first version learnt from stays in the window: the log alone only holds what the served versions chose to show.
    writeMerged(dir, options.base, loadDatasetFiles(logged));
  } finally {
    client.close();
  }
  return { source: { kind: 'files', dir, setup: { split: 'time' } }, exported: summary };
}

/** A version's gated metrics on one line: `two-tower recall@10 0.2538, ...; dlrm auc 0.7848`. */
function metricsLine(metrics: RetrainReport['candidate']['metrics']): string {
  return Object.entries(metrics)
    .map(
      ([model, values]) =>
        `${model} ${Object.entries(values ?? {})
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ')}`,
    )
    .join('; ');
}

function pickReport(r: RetrainReport): NonNullable<LoopRound['retrain']> {
  return {
    decision: r.decision,
    reasons: r.reasons,
    servingAfter: r.servingAfter,
    candidate: r.candidate,
    serving: r.serving,
  };
}

async function currentVersion(options: LoopOptions): Promise<string> {
  const v = await latestVersion(options.models);
  if (v === undefined) throw new Error(`${options.models}: no model version serves (train one first)`);
  return v;
}

/** The base data's interactions, then the log's, over the log's users and items (the feature service's); rows of ids it lacks are dropped. */
function writeMerged(dir: string, base: Dataset, logged: Dataset): void {
  const b = base.interactions;
  const l = logged.interactions;
  const keep: number[] = [];
  const userOf = new Int32Array(b.length);
  const itemOf = new Int32Array(b.length);
  for (let r = 0; r < b.length; r++) {
    const u = logged.users.index.get(base.users.ids[b.user[r]!]!);
    const i = logged.items.index.get(base.items.ids[b.item[r]!]!);
    if (u === undefined || i === undefined) continue;
    userOf[r] = u;
    itemOf[r] = i;
    keep.push(r);
  }
  const n = keep.length + l.length;
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const value = new Float32Array(n);
  const timestamp = new Float64Array(n);
  keep.forEach((r, k) => {
    user[k] = userOf[r]!;
    item[k] = itemOf[r]!;
    value[k] = b.value[r]!;
    timestamp[k] = b.timestamp[r]!;
  });
  user.set(l.user, keep.length);
  item.set(l.item, keep.length);
  value.set(l.value, keep.length);
  timestamp.set(l.timestamp, keep.length);
  writeDatasetFiles({ ...logged, interactions: { length: n, user, item, value, timestamp, context: {} } }, dir);
}
