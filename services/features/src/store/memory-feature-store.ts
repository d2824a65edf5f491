import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type common, features } from '@recsys/contracts';
import {
  type FeatureStore,
  type FeatureStoreOptions,
  InvalidCursorError,
  type PopularItemScore,
  type RecordResult,
  type ScanPage,
  type UserWithHistory,
} from './feature-store.js';

import {
  attributable,
  compareLogIds,
  decodeLogEntry,
  encodeLogEntry,
  parseLogId,
  type Attribution,
  type EventLogPage,
  type EventLogRange,
  decodeVersions,
  encodeVersions,
} from './event-log.js';
import { decodeItems } from './item-codec.js';
import { planEvents } from './event-plan.js';
import { decodeHistory } from './history-codec.js';
import { addLogScores, byPopularity, scoreAt } from './popularity-decay.js';
import { validateStoreOptions } from './store-options.js';

export interface MemoryFeatureStoreOptions extends FeatureStoreOptions {
  /** Unix ms now; tests move it to expire event ids. */
  clock?: () => number;
}

interface LogEntry {
  ms: number;
  seq: number;
  bytes: Uint8Array;
}

interface RememberedImpression {
  expiresAt: number;
  versions: Uint8Array;
  positions: Map<string, number>;
  attributed: Set<string>;
}

interface RankedItem {
  itemId: string;
  logScore: number;
}

/**
 * The embedded store: the same observable behaviour as RedisFeatureStore, kept in Maps.
 * It stores what Redis would (protobuf binary, encoded history, log2 popularity sums), so
 * callers never share objects with it and values are rounded exactly as Redis round-trips them.
 */
export class MemoryFeatureStore implements FeatureStore {
  private readonly options: FeatureStoreOptions;
  private readonly clock: () => number;
  private readonly users = new Map<string, Uint8Array>();
  private readonly items = new Map<string, Uint8Array>();
  /** User and item ids in the order first stored (rows are never deleted): a scan's cursor is a position in them. */
  private readonly userOrder: string[] = [];
  private readonly itemOrder: string[] = [];
  /** Encoded entries, newest first, at most historyCap. */
  private readonly histories = new Map<string, Buffer[]>();
  /** Item id -> log2 of its forward-decayed weight sum. */
  private readonly popularity = new Map<string, number>();
  /** Items best first; the order does not depend on "now", so it holds until the next event. */
  private ranked: RankedItem[] | undefined;
  /** Event id -> when it may be applied again; insertion order is expiry order (constant TTL). */
  private readonly seen = new Map<string, number>();
  /** The event log in write order; ids (ms, seq) as a Redis stream gives them. */
  private log: LogEntry[] = [];
  /** Request id -> the answer, for attribution; insertion order is expiry order (constant window). */
  private readonly impressions = new Map<string, RememberedImpression>();

  constructor(options: MemoryFeatureStoreOptions) {
    validateStoreOptions(options);
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  /** How many event ids are remembered for de-duplication (expired ones are pruned). */
  get rememberedEventIds(): number {
    return this.seen.size;
  }

  async getUser(userId: string, historyLimit: number): Promise<UserWithHistory> {
    const raw = this.users.get(userId);
    const limit = Math.max(0, Math.floor(historyLimit));
    return {
      user: raw ? fromBinary(features.UserSchema, raw) : undefined,
      history: decodeHistory((this.histories.get(userId) ?? []).slice(0, limit)),
    };
  }

  async getItems(itemIds: readonly string[]): Promise<(features.Item | undefined)[]> {
    return decodeItems(await this.getEncodedItems(itemIds));
  }

  async getEncodedItems(itemIds: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    // Stored bytes are never written in place (upserts replace them), so sharing them is safe.
    return itemIds.map((id) => this.items.get(id));
  }

  async upsertUsers(users: readonly features.User[]): Promise<void> {
    for (const user of users) {
      if (!this.users.has(user.userId)) this.userOrder.push(user.userId);
      this.users.set(user.userId, toBinary(features.UserSchema, user));
    }
  }

  async upsertItems(items: readonly features.Item[]): Promise<void> {
    for (const item of items) {
      if (!this.items.has(item.itemId)) this.itemOrder.push(item.itemId);
      this.items.set(item.itemId, toBinary(features.ItemSchema, item));
    }
  }

  async scanItems(cursor: string, limit: number): Promise<ScanPage> {
    return scan(this.items, this.itemOrder, cursor, limit);
  }

  async scanUsers(cursor: string, limit: number): Promise<ScanPage> {
    return scan(this.users, this.userOrder, cursor, limit);
  }

  async recordEvents(events: readonly common.FeedbackEvent[], unknownItems?: ReadonlySet<string>): Promise<RecordResult> {
    const now = this.clock();
    this.pruneSeen(now);
    let accepted = 0;
    for (const event of planEvents(events, this.options, now, unknownItems)) {
      const until = this.seen.get(event.eventId);
      // Same rule as a Redis key with PX: alive while now <= its expiry.
      if (until !== undefined && now <= until) continue;
      this.seen.delete(event.eventId);
      this.seen.set(event.eventId, now + this.options.dedupTtlMs);
      accepted += 1;
      if (event.historyEntry) this.pushHistory(event.userId, event.historyEntry);
      if (event.logWeight !== undefined) {
        const current = this.popularity.get(event.itemId);
        this.popularity.set(event.itemId, current === undefined ? event.logWeight : addLogScores(current, event.logWeight));
        this.ranked = undefined;
      }
    }
    return { accepted, duplicates: events.length - accepted };
  }

  async popular(limit: number, nowMs: number): Promise<PopularItemScore[]> {
    const count = Math.floor(limit);
    if (count <= 0) return [];
    this.ranked ??= this.rank();
    return this.ranked.slice(0, count).map(({ itemId, logScore }) => ({
      itemId,
      score: scoreAt(logScore, nowMs, this.options.popularityHalfLifeMs),
    }));
  }

  async logImpressions(impressions: readonly features.Impression[]): Promise<void> {
    const now = this.clock();
    this.pruneImpressions(now);
    for (const impression of impressions) {
      this.append(now, encodeLogEntry({ case: 'impression', value: impression }));
      this.impressions.delete(impression.requestId);
      this.impressions.set(impression.requestId, {
        expiresAt: now + this.options.attributionWindowMs,
        versions: encodeVersions(impression.versions),
        positions: new Map(impression.items.map((item) => [item.itemId, item.position])),
        attributed: new Set(),
      });
    }
  }

  async logFeedback(events: readonly common.FeedbackEvent[]): Promise<(Attribution | undefined)[]> {
    const now = this.clock();
    this.pruneImpressions(now);
    return events.map((event) => {
      this.append(now, encodeLogEntry({ case: 'feedback', value: event }));
      if (!attributable(event)) return undefined;
      const impression = this.impressions.get(event.requestId);
      const position = impression?.positions.get(event.itemId);
      if (impression === undefined || position === undefined) return undefined;
      const key = `${event.eventType}:${event.itemId}`;
      if (impression.attributed.has(key)) return undefined;
      impression.attributed.add(key);
      return { versions: decodeVersions(impression.versions), position };
    });
  }

  async readEventLog(range: EventLogRange): Promise<EventLogPage> {
    this.trimLog(this.clock());
    const after = range.afterId === '' ? undefined : parseLogId(range.afterId);
    const until = range.untilMs > 0 ? range.untilMs : Infinity;
    // The first entry at or after sinceMs (and after afterId): a binary search over the ordered log.
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const entry = this.log[mid]!;
      const before = entry.ms < range.sinceMs || (after !== undefined && compareLogIds([entry.ms, entry.seq], after) <= 0);
      if (before) lo = mid + 1;
      else hi = mid;
    }
    const entries: features.EventLogEntry[] = [];
    let i = lo;
    for (; i < this.log.length && entries.length < range.limit; i++) {
      const entry = this.log[i]!;
      if (entry.ms > until) break;
      entries.push(decodeLogEntry(`${entry.ms}-${entry.seq}`, entry.bytes));
    }
    const more = i < this.log.length && this.log[i]!.ms <= until;
    return { entries, nextId: more && entries.length > 0 ? entries[entries.length - 1]!.id : '' };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  private pushHistory(userId: string, entry: Buffer): void {
    let history = this.histories.get(userId);
    if (!history) {
      history = [];
      this.histories.set(userId, history);
    }
    history.unshift(entry);
    if (history.length > this.options.historyCap) history.length = this.options.historyCap;
  }

  /** Ids as a Redis stream makes them: the clock's ms, or the last ms (and the next seq) if the clock went back. */
  private append(now: number, bytes: Uint8Array): void {
    this.trimLog(now);
    const last = this.log[this.log.length - 1];
    const ms = last === undefined ? now : Math.max(now, last.ms);
    const seq = last !== undefined && last.ms === ms ? last.seq + 1 : 0;
    this.log.push({ ms, seq, bytes });
  }

  /** Drops entries older than the retention (exactly, as XADD MINID = does). */
  private trimLog(now: number): void {
    const oldest = now - this.options.eventLogRetentionMs;
    let drop = 0;
    while (drop < this.log.length && this.log[drop]!.ms < oldest) drop++;
    if (drop > 0) this.log = this.log.slice(drop);
  }

  private pruneImpressions(now: number): void {
    for (const [requestId, impression] of this.impressions) {
      if (now < impression.expiresAt) break;
      this.impressions.delete(requestId);
    }
  }

  /** Drops expired ids from the front; amortised O(1) per event since each id is dropped once. */
  private pruneSeen(now: number): void {
    for (const [eventId, until] of this.seen) {
      if (now <= until) break;
      this.seen.delete(eventId);
    }
  }

  /** Best first, ordered as Redis orders them (byPopularity). */
  private rank(): RankedItem[] {
    const ranked = Array.from(this.popularity, ([itemId, logScore]) => ({ itemId, logScore }));
    ranked.sort(byPopularity);
    return ranked;
  }
}

/** A page of rows in the order first stored; the cursor is the next position. */
function scan(rows: ReadonlyMap<string, Uint8Array>, order: readonly string[], cursor: string, limit: number): ScanPage {
  const start = cursor === '' ? 0 : /^[1-9]\d{0,15}$/.test(cursor) ? Number(cursor) : -1;
  if (start < 0) throw new InvalidCursorError(cursor, "'' or a position given by an earlier page");
  const end = Math.min(order.length, start + Math.max(1, Math.floor(limit)));
  const page: Uint8Array[] = [];
  for (let k = start; k < end; k++) page.push(rows.get(order[k]!)!);
  return { rows: page, next: end < order.length ? String(end) : '' };
}
