import { clone, type create, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { common, features, fieldNumber } from '@recsys/contracts';
import {
  checkTimestampField,
  EncodedMessage,
  idProblem,
  InvalidArgumentError,
  timestampProblem,
  UnavailableError,
  type Logger,
} from '@recsys/service-kit';
import type { FeaturesConfig } from './config.js';
import { InvalidCursorError, StoreUnavailableError, type FeatureStore, type ScanPage } from './store/index.js';
import type { EventMetrics } from './event-metrics.js';
import { checkBatch, checkEvent, checkId, checkImpression, featuresProblem } from './validation.js';

/** Rows a page of ReadEventLog, ListUsers or ScanItems holds when the request says 0. */
const DEFAULT_PAGE = 1000;
const LOG_ID = /^\d{1,20}-\d{1,20}$/;

type Init<S extends Parameters<typeof create>[0]> = MessageInitShape<S>;

// The batch answer is written from the stored Item bytes; its field numbers come from the generated descriptors.
const BATCH = {
  items: fieldNumber(features.BatchGetItemFeaturesResponseSchema, 'items'),
  missingIds: fieldNumber(features.BatchGetItemFeaturesResponseSchema, 'missingIds'),
  found: fieldNumber(features.ItemResultSchema, 'found'),
  item: fieldNumber(features.ItemResultSchema, 'item'),
  itemId: fieldNumber(features.ItemSchema, 'itemId'),
};
// Scan pages (ScanItems, ListUsers) are written from the stored row bytes too.
const SCAN_ITEMS = {
  rows: fieldNumber(features.ScanItemsResponseSchema, 'items'),
  nextCursor: fieldNumber(features.ScanItemsResponseSchema, 'nextCursor'),
};
const LIST_USERS = {
  rows: fieldNumber(features.ListUsersResponseSchema, 'users'),
  nextCursor: fieldNumber(features.ListUsersResponseSchema, 'nextCursor'),
};
/** Longest cursor accepted (the stores' cursors are far shorter). */
const MAX_CURSOR_LENGTH = 64;

/** The feature service's logic: validation, then the store; transport-free so it is easy to test. */
export class FeatureService {
  constructor(
    private readonly store: FeatureStore,
    private readonly config: FeaturesConfig,
    private readonly now: () => number = Date.now,
    private readonly events?: { metrics: EventMetrics; logger: Logger },
  ) {}

  async getUserFeatures(request: features.GetUserFeaturesRequest): Promise<Init<typeof features.GetUserFeaturesResponseSchema>> {
    checkId('user_id', request.userId, this.config);
    const limit = request.historyLimit === 0 ? this.config.historyDefaultLimit : request.historyLimit;
    if (limit < 0 || limit > this.config.historyCap) {
      throw new InvalidArgumentError(
        'history_limit',
        `must be between 0 and ${this.config.historyCap} (0 means ${this.config.historyDefaultLimit})`,
      );
    }
    const { user, history } = await this.guard(() => this.store.getUser(request.userId, limit));
    return { found: user !== undefined, user: user ?? { userId: request.userId }, history };
  }

  /**
   * The hot path of ranking: the stored item bytes are spliced into the response as they are
   * (an embedded message is its bytes behind a length), so no item is decoded or re-encoded here.
   */
  async batchGetItemFeatures(
    request: features.BatchGetItemFeaturesRequest,
  ): Promise<EncodedMessage<typeof features.BatchGetItemFeaturesResponseSchema>> {
    const ids = request.itemIds;
    checkBatch('item_ids', ids.length, this.config);
    for (let i = 0; i < ids.length; i++) checkId(`item_ids[${i}]`, ids[i]!, this.config);
    const found = await this.guard(() => this.store.getEncodedItems(ids));
    const writer = new BinaryWriter();
    const missingIds: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const bytes = found[i];
      writer.tag(BATCH.items, WireType.LengthDelimited).fork();
      if (bytes) {
        writer.tag(BATCH.found, WireType.Varint).bool(true).tag(BATCH.item, WireType.LengthDelimited).bytes(bytes);
      } else {
        missingIds.push(ids[i]!);
        writer.tag(BATCH.item, WireType.LengthDelimited).fork().tag(BATCH.itemId, WireType.LengthDelimited).string(ids[i]!).join();
      }
      writer.join();
    }
    for (const id of missingIds) writer.tag(BATCH.missingIds, WireType.LengthDelimited).string(id);
    return new EncodedMessage(features.BatchGetItemFeaturesResponseSchema, writer.finish());
  }

  /** A page of every stored item, spliced from the stored bytes as batchGetItemFeatures does. */
  async scanItems(request: features.ScanItemsRequest): Promise<EncodedMessage<typeof features.ScanItemsResponseSchema>> {
    return new EncodedMessage(
      features.ScanItemsResponseSchema,
      await this.scanPage(request, SCAN_ITEMS, (cursor, limit) => this.store.scanItems(cursor, limit)),
    );
  }

  /** A page of every stored user, as scanItems pages the items. */
  async listUsers(request: features.ListUsersRequest): Promise<EncodedMessage<typeof features.ListUsersResponseSchema>> {
    return new EncodedMessage(
      features.ListUsersResponseSchema,
      await this.scanPage(request, LIST_USERS, (cursor, limit) => this.store.scanUsers(cursor, limit)),
    );
  }

  /** One page of a store scan written as a response: each stored row behind its field tag, then the next cursor. */
  private async scanPage(
    request: { cursor: string; limit: number },
    fields: { rows: number; nextCursor: number },
    scan: (cursor: string, limit: number) => Promise<ScanPage>,
  ): Promise<Uint8Array> {
    const limit = this.pageLimit(request.limit);
    if (request.cursor.length > MAX_CURSOR_LENGTH) throw new InvalidArgumentError('cursor', 'is not a cursor an earlier page gave');
    let page;
    try {
      page = await this.guard(() => scan(request.cursor, limit));
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new InvalidArgumentError('cursor', error.message);
      throw error;
    }
    const writer = new BinaryWriter();
    for (const bytes of page.rows) writer.tag(fields.rows, WireType.LengthDelimited).bytes(bytes);
    if (page.next !== '') writer.tag(fields.nextCursor, WireType.LengthDelimited).string(page.next);
    return writer.finish();
  }

  async recordFeedback(request: features.RecordFeedbackRequest): Promise<Init<typeof features.RecordFeedbackResponseSchema>> {
    checkBatch('events', request.events.length, this.config);
    const now = this.now();
    // Every event is checked before any is stored: a bad batch changes nothing.
    request.events.forEach((event, i) => checkEvent(i, event, this.config, now));
    if (request.events.length === 0) return { accepted: 0, duplicates: 0 };
    // Feedback for an item the catalogue does not hold (a typo, a hostile client) is kept in the user's history but
    // must not make the item popular: the popular list is served to everyone.
    const itemIds = [...new Set(request.events.map((event) => event.itemId))];
    const stored = await this.guard(() => this.store.getEncodedItems(itemIds));
    const unknownItems = new Set(itemIds.filter((_, i) => stored[i] === undefined));
    const result = await this.guard(() => this.store.recordEvents(request.events, unknownItems));
    await this.logFeedback(request.events, now);
    return result;
  }

  /**
   * Applied feedback goes to the event log (times of 0 stamped with now) and is attributed to the answer its
   * request id names. The events are stored already: a log that cannot be written is counted and logged, and
   * the call still succeeds.
   */
  private async logFeedback(events: readonly common.FeedbackEvent[], now: number): Promise<void> {
    const stamped = events.map((event) =>
      event.timestampMs === 0n ? Object.assign(clone(common.FeedbackEventSchema, event), { timestampMs: BigInt(now) }) : event,
    );
    try {
      const attributions = await this.store.logFeedback(stamped);
      this.events?.metrics.attributed(stamped, attributions);
    } catch (error) {
      this.events?.metrics.logFailures.inc({ kind: 'feedback' }, stamped.length);
      this.events?.logger.warn({ err: error, events: stamped.length }, 'feedback applied but not written to the event log');
    }
  }

  async logImpressions(request: features.LogImpressionsRequest): Promise<Init<typeof features.LogImpressionsResponseSchema>> {
    checkBatch('impressions', request.impressions.length, this.config);
    request.impressions.forEach((impression, i) => checkImpression(i, impression, this.config));
    if (request.impressions.length === 0) return { logged: 0 };
    await this.guard(() => this.store.logImpressions(request.impressions));
    this.events?.metrics.impressions(request.impressions);
    return { logged: request.impressions.length };
  }

  async readEventLog(request: features.ReadEventLogRequest): Promise<Init<typeof features.ReadEventLogResponseSchema>> {
    checkTimestampField('since_ms', request.sinceMs);
    // 0 means up to the newest.
    checkTimestampField('until_ms', request.untilMs);
    if (request.untilMs > 0n && request.untilMs < request.sinceMs)
      throw new InvalidArgumentError('until_ms', 'must not be before since_ms');
    if (request.afterId !== '' && !LOG_ID.test(request.afterId))
      throw new InvalidArgumentError('after_id', 'must be an entry id "<ms>-<seq>" (a previous page\'s next_id)');
    const limit = this.pageLimit(request.limit);
    const page = await this.guard(() =>
      this.store.readEventLog({ sinceMs: Number(request.sinceMs), untilMs: Number(request.untilMs), afterId: request.afterId, limit }),
    );
    return { entries: page.entries, nextId: page.nextId };
  }

  private pageLimit(limit: number): number {
    if (limit < 0 || limit > this.config.maxBatchSize)
      throw new InvalidArgumentError('limit', `must be between 0 and ${this.config.maxBatchSize} (0 means ${DEFAULT_PAGE})`);
    return limit === 0 ? Math.min(DEFAULT_PAGE, this.config.maxBatchSize) : limit;
  }

  async getPopularItems(request: features.GetPopularItemsRequest): Promise<Init<typeof features.GetPopularItemsResponseSchema>> {
    const limit = request.limit === 0 ? this.config.popularDefaultLimit : request.limit;
    if (limit < 0 || limit > this.config.popularMaxLimit) {
      throw new InvalidArgumentError('limit', `must be between 0 and ${this.config.popularMaxLimit}`);
    }
    const filter = request.filter;
    const excluded = new Set(filter?.excludeItemIds ?? []);
    checkBatch('filter.exclude_item_ids', excluded.size, this.config);
    const include = new Set(filter?.includeCategories ?? []);
    const exclude = new Set(filter?.excludeCategories ?? []);
    const byCategory = include.size > 0 || exclude.size > 0;
    const now = this.now();
    if (!byCategory) {
      const top = await this.guard(() => this.store.popular(limit + excluded.size, now));
      return { items: top.filter((p) => !excluded.has(p.itemId)).slice(0, limit) };
    }
    // Category filters need the items' categories: read a wider head of the ranking once.
    const head = await this.guard(() => this.store.popular(Math.min(this.config.popularMaxLimit, limit * 4 + excluded.size), now));
    const items = await this.guard(() => this.store.getItems(head.map((p) => p.itemId)));
    const kept = head.filter((p, i) => {
      const category = items[i]?.category ?? '';
      return !excluded.has(p.itemId) && (include.size === 0 || include.has(category)) && !exclude.has(category);
    });
    return { items: kept.slice(0, limit) };
  }

  async upsertUsers(request: features.UpsertUsersRequest): Promise<Init<typeof features.UpsertUsersResponseSchema>> {
    checkBatch('users', request.users.length, this.config);
    const rejected: Init<typeof features.RejectedRowSchema>[] = [];
    const valid = request.users.filter((user, index) => {
      const reason = this.rowProblem('user_id', user.userId, user.features);
      if (reason) rejected.push({ index, id: user.userId, reason });
      return !reason;
    });
    if (valid.length > 0) await this.guard(() => this.store.upsertUsers(valid));
    return { stored: valid.length, rejected };
  }

  async upsertItems(request: features.UpsertItemsRequest): Promise<Init<typeof features.UpsertItemsResponseSchema>> {
    checkBatch('items', request.items.length, this.config);
    const rejected: Init<typeof features.RejectedRowSchema>[] = [];
    const valid = request.items.filter((item, index) => {
      let reason = this.rowProblem('item_id', item.itemId, item.features);
      if (!reason && item.category.length > this.config.maxIdLength)
        reason = `category: must be at most ${this.config.maxIdLength} characters`;
      const createdProblem = reason ? undefined : timestampProblem(item.createdAtMs);
      if (createdProblem) reason = `created_at_ms: ${createdProblem}`;
      if (reason) rejected.push({ index, id: item.itemId, reason });
      return !reason;
    });
    if (valid.length > 0) await this.guard(() => this.store.upsertItems(valid));
    return { stored: valid.length, rejected };
  }

  private rowProblem(idField: string, id: string, values: features.User['features']): string | undefined {
    const problem = idProblem(id, this.config.maxIdLength);
    if (problem) return `${idField}: ${problem}`;
    const featureProblem = featuresProblem(values);
    return featureProblem ? `features: ${featureProblem}` : undefined;
  }

  /** The store's outage becomes UNAVAILABLE: nothing was half-applied, the caller may retry. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw new UnavailableError(error.message, { cause: error });
      throw error;
    }
  }
}
