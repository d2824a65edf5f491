import type { common, features } from '@recsys/contracts';
import type { Attribution, EventLogPage, EventLogRange } from './event-log.js';

/** One item's decayed popularity as of a moment. */
export interface PopularItemScore {
  itemId: string;
  score: number;
}

export interface RecordResult {
  /** Events applied by this call. */
  accepted: number;
  /** Events ignored because their id had been recorded before. */
  duplicates: number;
}

export interface UserWithHistory {
  /** Undefined for a user the store has no features for (cold start). */
  user: features.User | undefined;
  /** Most recent first, at most the limit asked for. */
  history: features.HistoryEntry[];
}

/**
 * Where features live. Two implementations keep the same behaviour: Redis (production)
 * and in memory (the embedded default for a laptop). Both are checked by one contract spec.
 */
export interface FeatureStore {
  getUser(userId: string, historyLimit: number): Promise<UserWithHistory>;
  /** One answer per id, in the same order; undefined where the item is unknown. */
  getItems(itemIds: readonly string[]): Promise<(features.Item | undefined)[]>;
  /** As getItems, but each item as the protobuf binary of features.Item it is stored as (no decoding). */
  getEncodedItems(itemIds: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * One page of a scan over every stored item: the items as the protobuf binary of features.Item they are stored as
   * (item_id included), and the cursor of the next page ('' once the scan is complete). Start with ''. A page holds
   * about `limit` items (Redis scans in steps: a page may hold more, or none before the end). Items written during a
   * scan may or may not be returned. Throws InvalidCursorError for a cursor this store did not give.
   */
  scanItems(cursor: string, limit: number): Promise<ScanPage>;
  /** As scanItems, over the stored users (the protobuf binary of features.User). */
  scanUsers(cursor: string, limit: number): Promise<ScanPage>;
  /** Create or replace. */
  upsertUsers(users: readonly features.User[]): Promise<void>;
  /** Create or replace. */
  upsertItems(items: readonly features.Item[]): Promise<void>;
  /**
   * Applies events that were not applied before (by event id): appends to the user's
   * history (capped) and adds the event's weight to the item's decayed popularity.
   * An event time of 0 means now (the store's clock).
   */
  recordEvents(events: readonly common.FeedbackEvent[], unknownItems?: ReadonlySet<string>): Promise<RecordResult>;
  /** The most popular items, best first, with scores decayed to `nowMs`. */
  popular(limit: number, nowMs: number): Promise<PopularItemScore[]>;
  /**
   * Appends served answers to the event log (trimmed to the retention) and remembers each one for the
   * attribution window, so that feedback naming its request id can be attributed to it.
   */
  logImpressions(impressions: readonly features.Impression[]): Promise<void>;
  /**
   * Appends applied feedback events to the log and attributes each event with a request id to the
   * impression it answers: the first event of a type per (request, item) gets the impression's versions
   * and the item's position; others (repeats, unknown or expired requests, items not shown) get undefined.
   */
  logFeedback(events: readonly common.FeedbackEvent[]): Promise<(Attribution | undefined)[]>;
  /** The log's entries in write order within a time range, a page at a time. */
  readEventLog(range: EventLogRange): Promise<EventLogPage>;
  /** Resolves when the backing store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A page of a scan over the stored users or items: each row as the protobuf binary it is stored as. */
export interface ScanPage {
  rows: Uint8Array[];
  /** '' once the scan is complete. */
  next: string;
}

/** A scan cursor that this store did not give (the caller's error). */
export class InvalidCursorError extends Error {
  constructor(cursor: string, expected: string) {
    super(`"${cursor.slice(0, 64)}" is not a cursor of this store (expected ${expected})`);
    this.name = 'InvalidCursorError';
  }
}

/** The backing store cannot be reached; callers answer UNAVAILABLE and may retry. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export interface FeatureStoreOptions {
  /** Longest history kept per user; older entries are dropped. */
  historyCap: number;
  /** Half-life of popularity decay. */
  popularityHalfLifeMs: number;
  /** How long an event id is remembered for de-duplication. */
  dedupTtlMs: number;
  /** Popularity weight per event type; a type not listed adds nothing. */
  eventWeights: Partial<Record<number, number>>;
  /** Event types that enter the user's history (impressions usually do not). */
  historyEventTypes: ReadonlySet<number>;
  /** Event log entries older than this are trimmed (on each append). */
  eventLogRetentionMs: number;
  /** How long a served answer can be attributed feedback (online metrics per version). */
  attributionWindowMs: number;
}
