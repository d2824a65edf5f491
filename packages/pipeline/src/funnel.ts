// The funnel evaluation's arithmetic and its report: which of each user's held-out positives survive each stage of the
// served pipeline, per funnel setting, and what the setting costs in latency. No transport here: evaluate-pipeline.ts
// asks the gateway, this file counts and writes funnel.json and funnel.html.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrainingSetup } from '@recsys/data';
import { REPORT_CSS, escapeHtml, lineChart } from '@recsys/trainer';

/** One funnel: candidates retrieval returns, pre-ranking keeps, ranking keeps (re-ranking's pool); k items answered. */
export interface FunnelSetting {
  retrieved: number;
  preRanked: number;
  ranked: number;
}

/** The stages whose output is compared with the held-out positives, in pipeline order. */
export const FUNNEL_STAGES = ['retrieval', 'preranking', 'ranking', 'final'] as const;
export type FunnelStage = (typeof FUNNEL_STAGES)[number];

/**
 * The gateway's own funnel at k with its default variables (RETRIEVE_MAX, RANK_MAX, the re-ranking pool
 * max(k × RERANK_POOL_FACTOR, RERANK_POOL_MIN)); a test holds these figures to the gateway's config defaults.
 */
export function gatewayDefaultFunnel(k: number): FunnelSetting {
  return { retrieved: 1000, preRanked: 300, ranked: Math.max(k * 5, 100) };
}

/** The gateway's own funnel at its default k (20). */
export const DEFAULT_FUNNEL: FunnelSetting = gatewayDefaultFunnel(20);

/** The default setting and three narrower ones (each within the gateway's default maxima). */
export const DEFAULT_FUNNEL_SETTINGS: readonly FunnelSetting[] = [
  DEFAULT_FUNNEL,
  { retrieved: 500, preRanked: 150, ranked: 60 },
  { retrieved: 200, preRanked: 80, ranked: 40 },
  { retrieved: 100, preRanked: 40, ranked: 20 },
];

export const settingLabel = (s: FunnelSetting): string => `${s.retrieved}/${s.preRanked}/${s.ranked}`;

/** A user of the held-out split and the positives the pipeline could still recommend to them. */
export interface HeldOutUser {
  userId: string;
  /** Held-out (test split) positives that are not among the user's train interactions (those are "seen" by design). */
  positives: ReadonlySet<string>;
}

/**
 * The users with held-out positives, evenly sampled down to `maxUsers` (as the trainer's Recall@k samples), each with
 * their test-split positives minus the items they interacted with in train: the feature service holds the train
 * interactions as history, and retrieval and re-ranking exclude what a user has seen.
 */
export function heldOutUsers(setup: TrainingSetup, maxUsers: number): HeldOutUser[] {
  const { interactions, users, items, positiveThreshold } = setup.dataset;
  const train = new Map<number, Set<number>>();
  const test = new Map<number, Set<number>>();
  const add = (map: Map<number, Set<number>>, u: number, i: number) => (map.get(u) ?? map.set(u, new Set()).get(u)!).add(i);
  for (let r = 0; r < interactions.length; r++) {
    const u = interactions.user[r]!;
    if (setup.split[r] === 1) add(train, u, interactions.item[r]!);
    else if (setup.split[r] === 0 && interactions.value[r]! >= positiveThreshold) add(test, u, interactions.item[r]!);
  }
  const candidates: HeldOutUser[] = [];
  for (const u of [...test.keys()].sort((a, b) => a - b)) {
    const seen = train.get(u);
    const positives = new Set([...test.get(u)!].filter((i) => !seen?.has(i)).map((i) => items.ids[i]!));
    if (positives.size > 0) candidates.push({ userId: users.ids[u]!, positives });
  }
  if (candidates.length <= maxUsers) return candidates;
  return Array.from({ length: maxUsers }, (_, j) => candidates[Math.floor((j * candidates.length) / maxUsers)]!);
}

/** What one answer held at each stage: the candidate ids each stage passed on, and the items answered. */
export type StageLists = Record<FunnelStage, readonly string[]>;

/** How many of the user's positives each stage's list holds. */
export function stageHits(lists: StageLists, positives: ReadonlySet<string>): Record<FunnelStage, number> {
  const hits = (ids: readonly string[]) => new Set(ids.filter((id) => positives.has(id))).size;
  return { retrieval: hits(lists.retrieval), preranking: hits(lists.preranking), ranking: hits(lists.ranking), final: hits(lists.final) };
}

/** One user's answer at one setting. */
export interface UserOutcome {
  userId: string;
  positives: number;
  hits: Record<FunnelStage, number>;
  /** Candidates each stage passed on (the final k included). */
  sizes: Record<FunnelStage, number>;
  degraded: boolean;
}

/** Client-side latency of the plain (non-debug) requests, and the gateway's own total and per-stage times. */
export interface LatencySample {
  clientMs: number;
  gatewayMs: number;
  stageMs: Partial<Record<'retrieval' | 'preranking' | 'ranking' | 'reranking', number>>;
  degraded: boolean;
}

export interface SettingResult {
  retrieved: number;
  pre_ranked: number;
  ranked: number;
  k: number;
  /** The gateway's own funnel at this k. */
  default: boolean;
  users: number;
  /** Mean over users of the share of their held-out positives in each stage's output. */
  recall_retrieval: number;
  recall_preranking: number;
  recall_ranking: number;
  recall_final: number;
  /** Median candidates each stage passed on (what the stages really returned, not what was asked). */
  candidates_p50: Record<FunnelStage, number>;
  /** Users whose positives grew from a stage to a later one (a bug in the pipeline if ever above 0). */
  non_monotone_users: number;
  /** Latency of the same requests without debug, measured by the client over gRPC (end to end). */
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  requests: number;
  /** The gateway's own total_ms, p50, and each stage's p50 from the answers' timings. */
  gateway_p50_ms: number;
  stage_p50_ms: Record<string, number>;
  /** Share of answers (debug and plain) with a fallback: their stages' lists are what the fallback passed on. */
  degraded_share: number;
}

/** The p-th percentile (nearest rank) of the values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const round = (v: number, digits: number) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/** True when no later stage holds more of the user's positives than an earlier one. */
export const monotone = (hits: Record<FunnelStage, number>): boolean =>
  FUNNEL_STAGES.every((stage, i) => i === 0 || hits[stage] <= hits[FUNNEL_STAGES[i - 1]!]);

/** One setting's figures from its users' outcomes and its latency samples. */
export function summariseSetting(
  setting: FunnelSetting,
  k: number,
  outcomes: readonly UserOutcome[],
  latency: readonly LatencySample[],
  isDefault: boolean,
): SettingResult {
  const recall = (stage: FunnelStage) =>
    outcomes.length === 0 ? NaN : outcomes.reduce((sum, o) => sum + o.hits[stage] / o.positives, 0) / outcomes.length;
  const sizes = (stage: FunnelStage) =>
    percentile(
      outcomes.map((o) => o.sizes[stage]),
      50,
    );
  const stageNames = ['retrieval', 'preranking', 'ranking', 'reranking'] as const;
  const stage_p50_ms: Record<string, number> = {};
  for (const stage of stageNames) {
    const values = latency.map((l) => l.stageMs[stage]).filter((v): v is number => v !== undefined);
    stage_p50_ms[stage] = round(percentile(values, 50), 2);
  }
  const client = latency.map((l) => l.clientMs);
  const answers = outcomes.length + latency.length;
  const degraded = outcomes.filter((o) => o.degraded).length + latency.filter((l) => l.degraded).length;
  return {
    retrieved: setting.retrieved,
    pre_ranked: setting.preRanked,
    ranked: setting.ranked,
    k,
    default: isDefault,
    users: outcomes.length,
    recall_retrieval: round(recall('retrieval'), 4),
    recall_preranking: round(recall('preranking'), 4),
    recall_ranking: round(recall('ranking'), 4),
    recall_final: round(recall('final'), 4),
    candidates_p50: { retrieval: sizes('retrieval'), preranking: sizes('preranking'), ranking: sizes('ranking'), final: sizes('final') },
    non_monotone_users: outcomes.filter((o) => !monotone(o.hits)).length,
    p50_ms: round(percentile(client, 50), 2),
    p95_ms: round(percentile(client, 95), 2),
    p99_ms: round(percentile(client, 99), 2),
    requests: latency.length,
    gateway_p50_ms: round(
      percentile(
        latency.map((l) => l.gatewayMs),
        50,
      ),
      2,
    ),
    stage_p50_ms,
    degraded_share: answers === 0 ? 0 : round(degraded / answers, 4),
  };
}

/** funnel.json: the run's setting and one entry per funnel setting. */
export interface FunnelReport {
  generated_at: string;
  /** Where the answers came from: the gateway's address, and whether this run started the services. */
  gateway: { address: string; started_here: boolean; mode?: string };
  models: { dir: string; version: string };
  data: string;
  k: number;
  budget_ms: number;
  users: number;
  held_out_positives: number;
  /** How recall is counted, in words (the report says it too). */
  recall: string;
  settings: SettingResult[];
}

export const RECALL_DEFINITION =
  "per user, the share of their held-out positives (test split, not interacted with in train) among a stage's output; averaged over users";

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];
const STAGE_LABELS: Record<FunnelStage, string> = {
  retrieval: 'retrieval',
  preranking: 'pre-ranking',
  ranking: 'ranking',
  final: 'final k',
};
const recallOf = (s: SettingResult, stage: FunnelStage): number => s[`recall_${stage}`];

/** The report page: inline CSS and SVG, nothing fetched. */
export function renderFunnelHtml(report: FunnelReport): string {
  const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
  const rows = report.settings
    .map(
      (s) =>
        `<tr><td>${escapeHtml(settingLabel({ retrieved: s.retrieved, preRanked: s.pre_ranked, ranked: s.ranked }))}${s.default ? ' (default)' : ''}</td>` +
        FUNNEL_STAGES.map((stage) => `<td>${fmt(recallOf(s, stage), 4)}</td>`).join('') +
        `<td>${fmt(s.p50_ms, 1)}</td><td>${fmt(s.p95_ms, 1)}</td><td>${fmt(s.p99_ms, 1)}</td><td>${fmt(s.gateway_p50_ms, 1)}</td>` +
        `<td>${['retrieval', 'preranking', 'ranking', 'reranking'].map((st) => fmt(s.stage_p50_ms[st] ?? NaN, 1)).join(' / ')}</td>` +
        `<td>${FUNNEL_STAGES.map((stage) => s.candidates_p50[stage]).join(' / ')}</td>` +
        `<td>${(100 * s.degraded_share).toFixed(1)}%</td><td>${s.non_monotone_users}</td></tr>`,
    )
    .join('\n');
  const byStage = lineChart({
    caption: 'Held-out positives surviving each stage',
    xLabel: 'stage: 1 retrieval, 2 pre-ranking, 3 ranking, 4 final k',
    yLabel: 'recall (share of positives)',
    series: report.settings.map((s, i) => ({
      label: settingLabel({ retrieved: s.retrieved, preRanked: s.pre_ranked, ranked: s.ranked }) + (s.default ? ' (default)' : ''),
      points: FUNNEL_STAGES.map((stage, j): [number, number] => [j + 1, recallOf(s, stage)]),
      color: COLORS[i % COLORS.length]!,
      markers: true,
    })),
    x: [1, 4],
    yFromZero: true,
    legend: 'top-right',
  });
  // Each stage's recall against a figure of the settings, the settings in its order.
  const recallAgainst = (caption: string, xLabel: string, xOf: (s: SettingResult) => number) =>
    lineChart({
      caption,
      xLabel,
      yLabel: 'recall',
      series: FUNNEL_STAGES.map((stage, i) => ({
        label: STAGE_LABELS[stage],
        points: [...report.settings].sort((a, b) => xOf(a) - xOf(b)).map((s): [number, number] => [xOf(s), recallOf(s, stage)]),
        color: COLORS[i % COLORS.length]!,
        markers: true,
      })),
      yFromZero: true,
      legend: 'bottom-right',
    });
  const byLatency = recallAgainst(
    'Recall against latency, one point per funnel setting',
    'p50 latency through the gateway (ms)',
    (s) => s.p50_ms,
  );
  const byRetrieved = recallAgainst('Recall against the retrieved count', 'candidates retrieved', (s) => s.retrieved);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>recsys funnel evaluation</title>',
    `<style>${REPORT_CSS.trim()}</style></head><body>`,
    '<h1>Funnel evaluation</h1>',
    `<p class="muted">${escapeHtml(report.generated_at)} · models ${escapeHtml(report.models.dir)} version ${escapeHtml(report.models.version)} · data ${escapeHtml(report.data)}</p>`,
    `<p>Every answer came from the running services through the gateway at <code>${escapeHtml(report.gateway.address)}</code>` +
      `${report.gateway.started_here ? ` (started by this run${report.gateway.mode ? `, ${escapeHtml(report.gateway.mode)} mode` : ''})` : ''}: ` +
      `${report.users} users with ${report.held_out_positives} held-out positives, k = ${report.k}, budget ${report.budget_ms} ms. ` +
      `For each setting every user was asked once with <code>debug</code> (each stage's candidates) and once without (the latency).</p>`,
    `<p class="muted">Recall: ${escapeHtml(report.recall)}.</p>`,
    '<h2>Settings</h2>',
    '<table><thead><tr><th>retrieved / pre-ranked / ranked</th><th>retrieval</th><th>pre-ranking</th><th>ranking</th><th>final k</th>' +
      '<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>gateway p50 ms</th><th>stage p50 ms (ret / pre / rank / rerank)</th>' +
      '<th>candidates p50</th><th>degraded</th><th>non-monotone users</th></tr></thead><tbody>',
    rows,
    '</tbody></table>',
    '<h2>Curves</h2>',
    `<div class="charts">${byStage}${byLatency}${byRetrieved}</div>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** Writes funnel.json and funnel.html into `dir`; returns their paths. */
export async function writeFunnelReport(dir: string, report: FunnelReport): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'funnel.json');
  const html = join(dir, 'funnel.html');
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(html, renderFunnelHtml(report));
  return { json, html };
}
