import type { common } from '@recsys/contracts';

/** The rule kinds a rules file can name; a rule's name defaults to its kind. */
export const RULE_TYPES = ['drop_seen', 'boost_new', 'diversity', 'shuffle', 'block', 'pin'] as const;
export type RuleType = (typeof RULE_TYPES)[number];

/** A candidate while the rules work on it; turned back into a common.Candidate at the end. */
export interface Entry {
  itemId: string;
  score: number;
  /** Empty when neither the candidate nor the feature service knows it. */
  category: string;
  /** When the item entered the catalogue (Unix ms) as the candidate carried it (ranking sets it); 0 when unknown. */
  createdAtMs: number;
  channels: string[];
  stageScores: { stage: common.Stage; score: number }[];
}

/** One entry of the user's stored history (most recent first). */
export interface SeenEvent {
  itemId: string;
  eventType: common.EventType;
  timestampMs: number;
}

/** What the feature service knows of an item that the rules use. */
export interface ItemInfo {
  category: string;
  /** 0 when unknown. */
  createdAtMs: number;
}

/** A recent item from the request context. */
export interface RecentItem {
  itemId: string;
  eventType: common.EventType;
}

/** The request a rule runs for; the feature-service reads are shared by all rules and made at most once. */
export interface RuleContext {
  readonly userId: string;
  /** The request time (the context's, else the server's clock), Unix ms. */
  readonly nowMs: number;
  readonly limit: number;
  readonly recentItems: readonly RecentItem[];
  /** Item ids earlier rules of this request removed (a pin never brings them back). */
  readonly removed: ReadonlySet<string>;
  /** The user's history, at least `historyDepth` deep as the rules declared; rejects when the feature service fails. */
  history(): Promise<readonly SeenEvent[]>;
  /** The request's candidates (and insertable pins) as the feature service knows them; rejects when it fails. */
  items(): Promise<ReadonlyMap<string, ItemInfo>>;
}

/** What a rule needs read before it runs, so the engine can start every read at once. */
export interface RuleNeeds {
  historyDepth?: number;
  items?: boolean;
  /** Ids the item read should cover beyond the candidates (pins that may be inserted). */
  extraItemIds?: readonly string[];
}

export interface RuleResult {
  list: Entry[];
  /** One line for the report. */
  detail: string;
  /** Set when the rule could not do all it should (a failed read); the list is still what it could do. */
  error?: string;
}

export interface Rule {
  readonly name: string;
  readonly type: RuleType;
  needs(list: readonly Entry[]): RuleNeeds;
  apply(list: Entry[], context: RuleContext): RuleResult | Promise<RuleResult>;
}

/** A failed read's message for a rule's `error`. */
export function readFailure(what: string, error: unknown): string {
  return `${what} failed: ${error instanceof Error ? error.message : String(error)}`;
}
