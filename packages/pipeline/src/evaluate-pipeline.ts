// recsys-evaluate-pipeline's work: the held-out users of the served models' data, asked through the running gateway at
// each funnel setting (once with debug for every stage's candidates, once without for the latency), counted by funnel.ts.
import { isAbsolute, relative } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { common, features, gateway } from '@recsys/contracts';
import { fingerprint } from '@recsys/data';
import { createServiceClient, waitForServing } from '@recsys/service-kit';
import { describeSource, loadModelVersion, prepareSetup } from '@recsys/trainer';
import {
  DEFAULT_FUNNEL,
  type FunnelReport,
  type FunnelSetting,
  type FunnelStage,
  type HeldOutUser,
  type LatencySample,
  RECALL_DEFINITION,
  type SettingResult,
  type StageLists,
  type UserOutcome,
  gatewayDefaultFunnel,
  heldOutUsers,
  settingLabel,
  stageHits,
  summariseSetting,
  writeFunnelReport,
} from './funnel.js';
import { type PipelineMode, type PipelineOptions, type RunningPipeline, launchPipeline } from './pipeline.js';
import type { ServiceName } from './services.js';

export interface EvaluatePipelineOptions {
  /** A running gateway's gRPC address; absent: this run starts the services itself (launchPipeline) and stops them after. */
  gateway?: string;
  /** The feature service behind that gateway, read to check that it holds no held-out positives as history. */
  features?: string;
  /** An API key for a gateway with keys (sent as x-api-key). */
  apiKey?: string;
  /** The served models (their manifest names the data and its split); when starting, absent = train into workDir. */
  modelsDir?: string;
  /** Starting: the work directory (models, index, logs). */
  workDir?: string;
  /** Starting: the feature store (absent: in memory). */
  redisUrl?: string;
  mode?: PipelineMode;
  /** Starting: ports (default: all free ports, so a running recsys-up is left alone) and extra env per service. */
  ports?: PipelineOptions['ports'];
  env?: PipelineOptions['env'];
  settings: readonly FunnelSetting[];
  k: number;
  /** Held-out users asked (an even sample when there are more). */
  users: number;
  budgetMs: number;
  /** Requests per setting before the measured ones (not counted). */
  warmUp: number;
  /** Where funnel.json and funnel.html go. */
  out: string;
  log?: (line: string) => void;
}

export interface EvaluatePipelineResult {
  report: FunnelReport;
  files: { json: string; html: string };
  /** Every user's outcome per setting (label → outcomes), for checks beyond the report's means. */
  outcomes: Map<string, UserOutcome[]>;
}

const STAGE_OF: Partial<Record<common.Stage, FunnelStage>> = {
  [common.Stage.RETRIEVAL]: 'retrieval',
  [common.Stage.PRERANKING]: 'preranking',
  [common.Stage.RANKING]: 'ranking',
};
const TIMING_OF: Partial<Record<common.Stage, 'retrieval' | 'preranking' | 'ranking' | 'reranking'>> = {
  [common.Stage.RETRIEVAL]: 'retrieval',
  [common.Stage.PRERANKING]: 'preranking',
  [common.Stage.RANKING]: 'ranking',
  [common.Stage.RERANKING]: 'reranking',
};

/** A path under the working directory as a relative one (a report that travels names no home directory). */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/** Each stage's output in a debug answer, and the items answered. */
export function stageLists(answer: gateway.RecommendResponse): StageLists {
  const lists: StageLists = { retrieval: [], preranking: [], ranking: [], final: answer.items.map((i) => i.itemId) };
  for (const stage of answer.debug) {
    const name = STAGE_OF[stage.stage];
    if (name !== undefined) lists[name] = stage.candidates.map((c) => c.itemId);
  }
  return lists;
}

/** The gateway's limits a setting needs raised when it is wider than their defaults (when this run starts the services). */
function envForSettings(settings: readonly FunnelSetting[], budgetMs: number): NonNullable<PipelineOptions['env']> {
  const retrieved = Math.max(...settings.map((s) => s.retrieved));
  const rank = Math.max(...settings.map((s) => Math.max(s.preRanked, s.ranked)));
  const gatewayEnv: Record<string, string> = {
    // The request's funnel decides the counts; the adaptive ones would only move the default between settings.
    ADAPTIVE_CANDIDATES: 'false',
    RETRIEVE_MAX: String(Math.max(retrieved, DEFAULT_FUNNEL.retrieved)),
    RANK_MAX: String(Math.max(rank, DEFAULT_FUNNEL.preRanked)),
    BUDGET_MAX_MS: String(Math.max(budgetMs, 1000)),
  };
  const env: NonNullable<PipelineOptions['env']> = { gateway: gatewayEnv };
  if (retrieved > 1000) env.retrieval = { MAX_LIMIT: String(retrieved) };
  if (rank > 1000) env.preranking = { PRERANKING_MAX_LIMIT: String(rank) };
  if (retrieved > 5000) env.preranking = { ...env.preranking, PRERANKING_MAX_CANDIDATES: String(retrieved) };
  if (rank > 2000) env.ranking = { RANKING_MAX_CANDIDATES: String(rank) };
  return env;
}

function mergeEnv(a: NonNullable<PipelineOptions['env']>, b: PipelineOptions['env'] = {}): NonNullable<PipelineOptions['env']> {
  const out: NonNullable<PipelineOptions['env']> = { ...a };
  for (const [name, env] of Object.entries(b) as [ServiceName, Record<string, string>][]) out[name] = { ...out[name], ...env };
  return out;
}

/**
 * Refuses a feature service whose history holds held-out positives (loaded with the test split, as recsys-up does for
 * serving): retrieval and re-ranking would drop them as seen, and every stage's recall would read near zero.
 */
async function checkHeldOutUnseen(featuresAddress: string, users: readonly HeldOutUser[]): Promise<void> {
  const client = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 10_000 });
  try {
    let leaked = 0;
    let usersLeaking = 0;
    const sample = users.slice(0, 50);
    for (const user of sample) {
      const answer = await client.getUserFeatures({ userId: user.userId, historyLimit: 200 });
      const inHistory = answer.history.filter((event) => user.positives.has(event.itemId)).length;
      leaked += inHistory;
      if (inHistory > 0) usersLeaking++;
    }
    if (leaked > 0)
      throw new Error(
        `the feature service at ${featuresAddress} holds ${leaked} held-out positives as history (${usersLeaking} of ${sample.length} users checked): ` +
          'it was loaded with the test split (recsys-up and recsys-load-features load all interactions by default), so the stages drop them as seen. ' +
          'Load it with `recsys-load-features --history train`, or leave --gateway out and let this command start its own services',
      );
  } finally {
    client.close();
  }
}

/** Runs the funnel evaluation; starts (and stops) the services unless a gateway address is given. */
export async function evaluatePipeline(options: EvaluatePipelineOptions): Promise<EvaluatePipelineResult> {
  const log = options.log ?? (() => undefined);
  let running: RunningPipeline | undefined;
  try {
    let gatewayAddress = options.gateway;
    let featuresAddress = options.features;
    let modelsDir = options.modelsDir;
    if (gatewayAddress === undefined) {
      if (options.workDir === undefined) throw new Error('workDir: needed to start the services (or give a running gateway)');
      const ports = options.ports ?? { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 };
      running = await launchPipeline({
        workDir: options.workDir,
        ...(modelsDir !== undefined ? { modelsDir } : {}),
        ...(options.redisUrl !== undefined ? { redisUrl: options.redisUrl } : {}),
        ...(options.mode !== undefined ? { mode: options.mode } : {}),
        ports,
        featureHistory: 'train',
        env: mergeEnv(envForSettings(options.settings, options.budgetMs), options.env),
        log,
      });
      gatewayAddress = running.addresses.gateway;
      featuresAddress = running.addresses.features;
      modelsDir = running.modelsDir;
    }
    if (modelsDir === undefined) throw new Error('modelsDir: needed with a running gateway (the models it serves)');

    const model = await loadModelVersion(modelsDir, 'dlrm');
    const { source, preparation } = model.manifest.data;
    const { setup } = prepareSetup(source, preparation);
    if (fingerprint(setup) !== model.manifest.data.fingerprint)
      throw new Error(`the data at ${describeSource(source)} has changed since version ${model.version} was trained; retrain first`);
    const users = heldOutUsers(setup, options.users);
    if (users.length === 0) throw new Error(`${describeSource(source)}: no user has held-out positives to evaluate`);
    log(
      `evaluating ${users.length} users (${users.reduce((n, u) => n + u.positives.size, 0)} held-out positives) of ${describeSource(source)}, ` +
        `model version ${model.version}, through the gateway at ${gatewayAddress}`,
    );

    if (featuresAddress !== undefined) await checkHeldOutUnseen(featuresAddress, users);
    else log('no feature service address given: not checked that its history leaves the held-out positives out');
    await waitForServing(gatewayAddress, 10_000);

    const client = createServiceClient(gateway.GatewayService, gatewayAddress, { defaultTimeoutMs: options.budgetMs + 10_000 });
    const metadata = new Metadata();
    if (options.apiKey !== undefined) metadata.set('x-api-key', options.apiKey);
    const outcomes = new Map<string, UserOutcome[]>();
    const results: SettingResult[] = [];
    try {
      for (const setting of options.settings) {
        const label = settingLabel(setting);
        const ask = (userId: string, debug: boolean) =>
          client.recommend(
            {
              userId,
              k: options.k,
              budgetMs: options.budgetMs,
              debug,
              funnel: { retrieved: setting.retrieved, preRanked: setting.preRanked, ranked: setting.ranked },
            },
            { metadata },
          );
        for (let i = 0; i < options.warmUp; i++) await ask(users[i % users.length]!.userId, i % 2 === 0);
        const settingOutcomes: UserOutcome[] = [];
        const latency: LatencySample[] = [];
        const started = Date.now();
        for (const user of users) {
          const answer = await ask(user.userId, true);
          const lists = stageLists(answer);
          settingOutcomes.push({
            userId: user.userId,
            positives: user.positives.size,
            hits: stageHits(lists, user.positives),
            sizes: {
              retrieval: lists.retrieval.length,
              preranking: lists.preranking.length,
              ranking: lists.ranking.length,
              final: lists.final.length,
            },
            degraded: answer.degradations.length > 0,
          });
          const sent = performance.now();
          const plain = await ask(user.userId, false);
          const clientMs = performance.now() - sent;
          const stageMs: LatencySample['stageMs'] = {};
          for (const timing of plain.timings) {
            const name = TIMING_OF[timing.stage];
            if (name !== undefined) stageMs[name] = timing.durationMs;
          }
          latency.push({ clientMs, gatewayMs: plain.totalMs, stageMs, degraded: plain.degradations.length > 0 });
        }
        const isDefault = label === settingLabel(gatewayDefaultFunnel(options.k));
        const result = summariseSetting(setting, options.k, settingOutcomes, latency, isDefault);
        outcomes.set(label, settingOutcomes);
        results.push(result);
        log(
          `${label}${isDefault ? ' (default)' : ''}: recall retrieval ${result.recall_retrieval}, pre-ranking ${result.recall_preranking}, ` +
            `ranking ${result.recall_ranking}, final ${result.recall_final}; p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, ` +
            `p99 ${result.p99_ms} ms; ${(100 * result.degraded_share).toFixed(1)}% degraded (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      }
    } finally {
      client.close();
    }
    const report: FunnelReport = {
      generated_at: new Date().toISOString(),
      gateway: { address: gatewayAddress, started_here: running !== undefined, ...(running ? { mode: running.mode } : {}) },
      models: { dir: shownPath(modelsDir), version: model.version },
      data: describeSource(source),
      k: options.k,
      budget_ms: options.budgetMs,
      users: users.length,
      held_out_positives: users.reduce((n, u) => n + u.positives.size, 0),
      recall: RECALL_DEFINITION,
      settings: results,
    };
    const files = await writeFunnelReport(options.out, report);
    return { report, files, outcomes };
  } finally {
    await running?.close();
  }
}
