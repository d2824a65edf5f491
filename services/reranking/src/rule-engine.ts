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
    const numbers = new EntryNumbers();
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
      const before = new ListBefore(list, numbers);
      const started = performance.now();
      let outcome: { list: Entry[]; detail: string; error?: string };
      try {
        outcome = await rule.apply(list.slice(), context);
      } catch (error) {
        if (error instanceof ServiceError) throw error;
        before.restoreScores();
        this.logger?.error({ err: error, rule: rule.name }, 'rule failed; skipped');
        outcome = { list, detail: 'skipped: the rule failed', error: `rule failed: ${(error as Error).message ?? String(error)}` };
      }
      const durationMs = performance.now() - started;
      const { removedItemIds, changedItemIds } = before.compare(outcome.list);
      for (const id of removedItemIds) removed.add(id);
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

/** Every entry of a request numbered once (the candidates, and any a rule inserts), for typed arrays indexed by entry. */
export class EntryNumbers {
  private readonly numbers = new Map<Entry, number>();

  get size(): number {
    return this.numbers.size;
  }

  /** The entry's number, given one on first sight. */
  of(entry: Entry): number {
    let number = this.numbers.get(entry);
    if (number === undefined) this.numbers.set(entry, (number = this.numbers.size));
    return number;
  }

  /** The entry's number; undefined for one not seen yet. */
  peek(entry: Entry): number | undefined {
    return this.numbers.get(entry);
  }
}

/**
 * A list as a rule got it: each entry's position and score, kept in typed arrays (a rule runs on every request, so no
 * maps or sets per rule), to restore the scores of a rule that failed and to report what a rule removed and changed.
 */
export class ListBefore {
  private readonly scores: Float64Array;
  /** By entry number: 1 + the entry's position here; 0 for an entry not in this list. */
  private readonly positions: Int32Array;

  constructor(
    readonly list: readonly Entry[],
    private readonly numbers: EntryNumbers = new EntryNumbers(),
  ) {
    this.scores = new Float64Array(list.length);
    const numbered = new Int32Array(list.length);
    for (let i = 0; i < list.length; i++) {
      this.scores[i] = list[i]!.score;
      numbered[i] = numbers.of(list[i]!);
    }
    this.positions = new Int32Array(numbers.size);
    for (let i = 0; i < list.length; i++) this.positions[numbered[i]!] = i + 1;
  }

  /** Puts back every entry's score (a rule that failed may have changed some before it threw). */
  restoreScores(): void {
    for (let i = 0; i < this.list.length; i++) this.list[i]!.score = this.scores[i]!;
  }

  /**
   * What the rule did to get `after`: the ids it removed (in the old order), and those it changed: inserted ones,
   * those whose score changed, and the fewest that explain the new order, the ones outside the longest run that kept
   * its old relative order. Removing items changes no one else; moving one item up reports that item, not everything
   * it jumped over.
   */
  compare(after: readonly Entry[]): { removedItemIds: string[]; changedItemIds: string[] } {
    const kept = new Uint8Array(this.list.length);
    // After's entries that were here before: their old positions, and where they are in `after`.
    const oldPositions = new Int32Array(after.length);
    const keptAt = new Int32Array(after.length);
    const changed = new Uint8Array(after.length);
    let keptCount = 0;
    for (let j = 0; j < after.length; j++) {
      const entry = after[j]!;
      const position = this.positionOf(entry);
      if (position < 0 || kept[position] === 1) {
        changed[j] = 1;
        continue;
      }
      kept[position] = 1;
      if (this.scores[position] !== entry.score) changed[j] = 1;
      oldPositions[keptCount] = position;
      keptAt[keptCount++] = j;
    }
    const inOrder = longestIncreasingRun(oldPositions.subarray(0, keptCount));
    for (let k = 0; k < keptCount; k++) if (inOrder[k] === 0) changed[keptAt[k]!] = 1;
    const removedItemIds: string[] = [];
    for (let i = 0; i < this.list.length; i++) if (kept[i] === 0) removedItemIds.push(this.list[i]!.itemId);
    const changedItemIds: string[] = [];
    for (let j = 0; j < after.length; j++) if (changed[j] === 1) changedItemIds.push(after[j]!.itemId);
    return { removedItemIds, changedItemIds };
  }

  private positionOf(entry: Entry): number {
    const number = this.numbers.peek(entry);
    return number === undefined || number >= this.positions.length ? -1 : this.positions[number]! - 1;
  }
}

/** Marks (1) the positions of `values` in one longest strictly increasing subsequence; O(n log n). */
export function longestIncreasingRun(values: ArrayLike<number>): Uint8Array {
  const tails = new Int32Array(values.length);
  let length = 0;
  const previous = new Int32Array(values.length).fill(-1);
  for (let i = 0; i < values.length; i++) {
    let low = 0;
    let high = length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (values[tails[mid]!]! < values[i]!) low = mid + 1;
      else high = mid;
    }
    if (low > 0) previous[i] = tails[low - 1]!;
    tails[low] = i;
    if (low === length) length++;
  }
  const run = new Uint8Array(values.length);
  for (let i = length > 0 ? tails[length - 1]! : -1; i >= 0; i = previous[i]!) run[i] = 1;
  return run;
}
