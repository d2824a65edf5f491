import { randomUUID } from 'node:crypto';
import { clone } from '@bufbuild/protobuf';
import { common, gateway } from '@recsys/contracts';
import { checkIdField, checkTimestampField, idProblem, InvalidArgumentError } from '@recsys/service-kit';
import type { LimitsConfig } from './config.js';

const { fround } = Math;

const knownEventTypes = new Set(common.EventTypeSchema.values.map((v) => v.number));
const eventTypeNames = common.EventTypeSchema.values.filter((v) => v.number !== common.EventType.UNSPECIFIED).map((v) => v.name);

function checkCount(field: string, count: number, max: number, what: string): void {
  if (count > max) throw new InvalidArgumentError(field, `at most ${max} ${what} per request (got ${count})`);
}

/** k: 0 means the configured default; above maxK is an error, never clamped. */
function checkK(field: string, k: number, limits: LimitsConfig): void {
  if (!Number.isInteger(k) || k < 0)
    throw new InvalidArgumentError(field, `must be an integer >= 0 (0 means the default ${limits.defaultK})`);
  if (k > limits.maxK) throw new InvalidArgumentError(field, `must be at most ${limits.maxK} (got ${k})`);
}

/** A float field must survive the float32 encoding: 1e39 would arrive downstream as Infinity. */
function checkDwell(field: string, seconds: number): void {
  if (!Number.isFinite(fround(seconds)) || seconds < 0) throw new InvalidArgumentError(field, 'must be a finite number of seconds >= 0');
}

function checkEventType(field: string, eventType: common.EventType, required: boolean): void {
  if (!knownEventTypes.has(eventType) || (required && eventType === common.EventType.UNSPECIFIED)) {
    throw new InvalidArgumentError(field, `must be one of ${eventTypeNames.join(', ')}${required ? '' : ' (or unset)'} (got ${eventType})`);
  }
}

function checkFilter(filter: common.ItemFilter | undefined, limits: LimitsConfig): void {
  if (!filter) return;
  const lists = [
    ['filter.include_categories', filter.includeCategories],
    ['filter.exclude_categories', filter.excludeCategories],
    ['filter.exclude_item_ids', filter.excludeItemIds],
  ] as const;
  for (const [field, values] of lists) {
    checkCount(field, values.length, limits.maxFilterValues, 'values');
    for (let i = 0; i < values.length; i++) checkIdField(`${field}[${i}]`, values[i]!, limits.maxIdLength);
  }
}

function checkContext(context: common.UserContext | undefined, limits: LimitsConfig): void {
  if (!context) return;
  const items = context.recentItems;
  checkCount('context.recent_items', items.length, limits.maxContextItems, 'recent items');
  // Repeated item ids are fine here: a user may view the same item twice.
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const at = (field: string) => `context.recent_items[${i}].${field}`;
    checkIdField(at('item_id'), item.itemId, limits.maxIdLength);
    checkTimestampField(at('timestamp_ms'), item.timestampMs);
    checkDwell(at('dwell_seconds'), item.dwellSeconds);
    checkEventType(at('event_type'), item.eventType, false);
  }
  const attributes = Object.entries(context.attributes);
  checkCount('context.attributes', attributes.length, limits.maxAttributes, 'attributes');
  for (const [key, value] of attributes) {
    const field = `context.attributes[${JSON.stringify(key.slice(0, 64))}]`;
    const keyProblem = idProblem(key, limits.maxIdLength);
    if (keyProblem) throw new InvalidArgumentError(field, `key ${keyProblem}`);
    const valueProblem = idProblem(value, limits.maxIdLength);
    if (valueProblem) throw new InvalidArgumentError(field, `value ${valueProblem}`);
  }
  checkTimestampField('context.request_time_ms', context.requestTimeMs);
}

/** Throws InvalidArgumentError naming the snake_case field path of the first problem. */
export function validateRecommendRequest(req: gateway.RecommendRequest, limits: LimitsConfig): void {
  checkIdField('user_id', req.userId, limits.maxIdLength);
  checkK('k', req.k, limits);
  // The orchestrator clamps budgets into its configured bounds; only a negative one is meaningless.
  if (!Number.isInteger(req.budgetMs) || req.budgetMs < 0) {
    throw new InvalidArgumentError('budget_ms', 'must be an integer >= 0 (0 means the default budget)');
  }
  checkContext(req.context, limits);
  checkFilter(req.filter, limits);
}

/** The most candidates a request may ask each stage for: the gateway's configured maxima (RETRIEVE_MAX, RANK_MAX). */
export interface FunnelMaxima {
  retrieved: number;
  rank: number;
}

/**
 * The request's own funnel sizes (0 = the gateway's count): each within the configured maxima, and the ones given in
 * order (retrieved >= pre_ranked >= ranked >= k). A request may lower the counts, never raise them above the maxima.
 */
export function validateFunnel(funnel: gateway.FunnelSizes | undefined, k: number, maxima: FunnelMaxima): void {
  if (!funnel) return;
  const fields = [
    ['funnel.retrieved', funnel.retrieved, maxima.retrieved, 'RETRIEVE_MAX'],
    ['funnel.pre_ranked', funnel.preRanked, maxima.rank, 'RANK_MAX'],
    ['funnel.ranked', funnel.ranked, maxima.rank, 'RANK_MAX'],
  ] as const;
  for (const [field, value, max, variable] of fields) {
    if (!Number.isInteger(value) || value < 0)
      throw new InvalidArgumentError(field, `must be an integer >= 0 (0 means the gateway's own count) (got ${value})`);
    if (value > max) throw new InvalidArgumentError(field, `must be at most ${max}, the gateway's ${variable} (got ${value})`);
  }
  const given = fields.filter(([, value]) => value > 0);
  for (let i = 1; i < given.length; i++) {
    const [field, value] = given[i]!;
    const [earlier, before] = given[i - 1]!;
    if (value > before) throw new InvalidArgumentError(field, `must be at most ${earlier} (${before}) (got ${value})`);
  }
  const last = given[given.length - 1];
  if (last !== undefined && last[1] < k) throw new InvalidArgumentError(last[0], `must be at least k (${k}) (got ${last[1]})`);
}

/** Event ids are optional (see withEventIds); one repeated within a request is the client's bug. */
export function validateFeedbackRequest(req: gateway.SendFeedbackRequest, limits: LimitsConfig): void {
  const events = req.events;
  if (events.length === 0) throw new InvalidArgumentError('events', 'must hold at least one event');
  checkCount('events', events.length, limits.maxFeedbackEvents, 'events');
  const seen = new Map<string, number>();
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const at = (field: string) => `events[${i}].${field}`;
    if (event.eventId !== '') {
      checkIdField(at('event_id'), event.eventId, limits.maxIdLength);
      const first = seen.get(event.eventId);
      if (first !== undefined) throw new InvalidArgumentError(at('event_id'), `"${event.eventId}" repeats events[${first}].event_id`);
      seen.set(event.eventId, i);
    }
    checkIdField(at('user_id'), event.userId, limits.maxIdLength);
    checkIdField(at('item_id'), event.itemId, limits.maxIdLength);
    checkEventType(at('event_type'), event.eventType, true);
    checkTimestampField(at('timestamp_ms'), event.timestampMs);
    checkDwell(at('dwell_seconds'), event.dwellSeconds);
    if (event.requestId !== '') checkIdField(at('request_id'), event.requestId, limits.maxIdLength);
  }
}

export function validateSimilarRequest(req: gateway.GetSimilarItemsRequest, limits: LimitsConfig): void {
  checkIdField('item_id', req.itemId, limits.maxIdLength);
  checkK('k', req.k, limits);
  checkFilter(req.filter, limits);
}

/** A copy of the request in which every event without an id has a new UUID (the feature store dedups by id). */
export function withEventIds(req: gateway.SendFeedbackRequest): gateway.SendFeedbackRequest {
  const copy = clone(gateway.SendFeedbackRequestSchema, req);
  for (const event of copy.events) if (event.eventId === '') event.eventId = randomUUID();
  return copy;
}
