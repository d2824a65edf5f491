import { ServiceError, type Logger } from '@recsys/service-kit';
import { passedUserAnswer, type PassedUser } from '@recsys/stage';
import { seenEvents } from './feature-source.js';
import { RULE_TYPES, type Entry, type ItemInfo, type RecentItem, type Rule, type RuleContext, type SeenEvent } from './rules/rule.js';

/** The feature-service reads the rules use; the gRPC adapter retries within the request's deadline. */
export interface FeatureSource {
  /** The user's history, most recent first, at most `depth` entries. */
  history(userId: string, depth: number): Promise<SeenEvent[]>;
  /** Items by id in one round trip; unknown ids are absent from the map. */
  items(itemIds: readonly string[]): Promise<Map<string, ItemInfo>>;
}

/** Told what every rule run did (the metrics). */
export interface RuleObserver {
  ruleRan(rule: string, removed: number, changed: number, failed: boolean): void;
}

export interface RuleReportData {
  rule: string;
  removedItemIds: string[];
  changedItemIds: string[];
  detail: string;
  durationMs: number;
  error: string;
}

export interface EngineRequest {
  userId: string;
  nowMs: number;
  limit: number;
  recentItems: readonly RecentItem[];
  candidates: Entry[];
  /** Rule names or rule types to skip. */
  disabled: ReadonlySet<string>;
  /** The user state the request carries (read once upstream); used instead of a history read when deep enough. */
  passedUser?: PassedUser;
}

const DEFAULT_HISTORY_DEPTH = 100;

/**
 * Applies the configured rules in order, each on the list the previous one left, and reports per rule
 * what it removed and changed. The feature-service reads the enabled rules need start together before
 * the first rule runs and are shared. A rule that fails unexpectedly is skipped (its error reported);
 * only a deliberate ServiceError (drop_seen with on_failure: unavailable) fails the call.
 */
export class RuleEngine {
  constructor(
    readonly rules: readonly Rule[],
    private readonly features: FeatureSource,
    private readonly observer?: RuleObserver,
    private readonly logger?: Logger,
  ) {}

  /** What `disabled_rules` may name: the configured rule names and every rule type. */
  isKnownName(name: string): boolean {
    return this.rules.some((rule) => rule.name === name || rule.type === name) || KNOWN_TYPES.has(name);
  }

  async run(request: EngineRequest): Promise<{ list: Entry[]; reports: RuleReportData[] }> {
    const enabled = this.rules.filter((rule) => !request.disabled.has(rule.name) && !request.disabled.has(rule.type));
    let historyDepth = 0;
    let prefetchItems = false;
    const itemIds = new Set(request.candidates.map((entry) => entry.itemId));
    for (const rule of enabled) {
      const needs = rule.needs(request.candidates);
      historyDepth = Math.max(historyDepth, needs.historyDepth ?? 0);
      prefetchItems ||= needs.items === true;
      for (const id of needs.extraItemIds ?? []) itemIds.add(id);
    }
    const depth = historyDepth || DEFAULT_HISTORY_DEPTH;
    const passed = passedUserAnswer(request.userId, request.passedUser, depth);
    const history = once(() => (passed ? Promise.resolve(seenEvents(passed.history)) : this.features.history(request.userId, depth)));
    const items = once(() => this.features.items([...itemIds]));
    // Both reads in flight at once: one round trip for the request, whichever rules need them.
    if (historyDepth > 0) void history().catch(() => undefined);
    if (prefetchItems) void items().catch(() => undefined);

    const removed = new Set<string>();
    const context: RuleContext = {
      userId: request.userId,
      nowMs: request.nowMs,
      limit: request.limit,
      recentItems: request.recentItems,
      removed,
      history,
      items,
    };
    let list = request.candidates;
    const reports: RuleReportData[] = [];
    for (const rule of this.rules) {
      if (!enabled.includes(rule)) {
        reports.push({
          rule: rule.name,
          removedItemIds: [],
          changedItemIds: [],
          detail: 'skipped',
          durationMs: 0,
          error: 'disabled by the request',
        });
        continue;
      }
      const before = list;
      const scores = new Map(before.map((entry) => [entry, entry.score]));
      const started = performance.now();
      let outcome: { list: Entry[]; detail: string; error?: string };
      try {
        outcome = await rule.apply(before.slice(), context);
      } catch (error) {
        if (error instanceof ServiceError) throw error;
        for (const [entry, score] of scores) entry.score = score;
        this.logger?.error({ err: error, rule: rule.name }, 'rule failed; skipped');
        outcome = { list: before, detail: 'skipped: the rule failed', error: `rule failed: ${(error as Error).message ?? String(error)}` };
      }
      const durationMs = performance.now() - started;
      const kept = new Set(outcome.list);
      const removedItemIds = before.filter((entry) => !kept.has(entry)).map((entry) => entry.itemId);
      for (const id of removedItemIds) removed.add(id);
      const changedItemIds = changedIds(before, outcome.list, scores);
      const error = outcome.error ?? '';
      // Debug only: an outage would log on every request; the report and reranking_rule_errors_total carry it.
      if (error) this.logger?.debug({ rule: rule.name, error }, 'rule degraded');
      this.observer?.ruleRan(rule.name, removedItemIds.length, changedItemIds.length, error !== '');
      reports.push({ rule: rule.name, removedItemIds, changedItemIds, detail: outcome.detail, durationMs, error });
      list = outcome.list;
    }
    return { list, reports };
  }
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(RULE_TYPES);

/** A lazily started read, shared by every caller. */
function once<T>(read: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => (started ??= read());
}

/**
 * The entries a rule changed: inserted ones, those whose score changed, and the fewest that explain
 * the new order — the ones outside the longest run that kept its old relative order. Removing items
 * changes no one else; moving one item up reports that item, not everything it jumped over.
 */
export function changedIds(before: readonly Entry[], after: readonly Entry[], scoreBefore: ReadonlyMap<Entry, number>): string[] {
  const index = new Map(before.map((entry, i) => [entry, i]));
  const changed = new Set<Entry>();
  const kept: Entry[] = [];
  for (const entry of after) {
    const old = scoreBefore.get(entry);
    if (old === undefined) changed.add(entry);
    else {
      kept.push(entry);
      if (old !== entry.score) changed.add(entry);
    }
  }
  const inOrder = longestIncreasingRun(kept.map((entry) => index.get(entry)!));
  kept.forEach((entry, i) => {
    if (!inOrder.has(i)) changed.add(entry);
  });
  return after.filter((entry) => changed.has(entry)).map((entry) => entry.itemId);
}

/** Positions (into `values`) of one longest strictly increasing subsequence; O(n log n). */
export function longestIncreasingRun(values: readonly number[]): Set<number> {
  const tails: number[] = [];
  const previous = new Int32Array(values.length).fill(-1);
  for (let i = 0; i < values.length; i++) {
    let low = 0;
    let high = tails.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (values[tails[mid]!]! < values[i]!) low = mid + 1;
      else high = mid;
    }
    if (low > 0) previous[i] = tails[low - 1]!;
    tails[low] = i;
  }
  const run = new Set<number>();
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = previous[i]!) run.add(i);
  return run;
}
