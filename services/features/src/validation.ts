import { common, type features } from '@recsys/contracts';
import { checkTimestampField, idProblem, InvalidArgumentError } from '@recsys/service-kit';
// Events further ahead than this are clock errors, not data; the store clamps by the same bound.
import { MAX_FUTURE_SKEW_MS } from './store/index.js';

export interface Limits {
  maxBatchSize: number;
  maxIdLength: number;
}

/** Longest accepted feature name; names are keys, not data. */
const MAX_FEATURE_NAME = 128;

export function checkId(field: string, id: string, limits: Limits): void {
  const problem = idProblem(id, limits.maxIdLength);
  if (problem) throw new InvalidArgumentError(field, problem);
}

export function checkBatch(field: string, size: number, limits: Limits): void {
  if (size > limits.maxBatchSize) {
    throw new InvalidArgumentError(field, `at most ${limits.maxBatchSize} entries per call (got ${size}); split the batch`);
  }
}

/** Why a feature map is unacceptable, naming the feature, or undefined when it is fine. */
export function featuresProblem(values: features.User['features'] | undefined): string | undefined {
  if (!values) return undefined;
  for (const [name, value] of Object.entries(values.values)) {
    if (name.length === 0 || name.length > MAX_FEATURE_NAME)
      return `feature name "${name.slice(0, 40)}" must have 1 to ${MAX_FEATURE_NAME} characters`;
    const kind = value.kind;
    switch (kind.case) {
      case undefined:
        return `feature "${name}" has no value`;
      case 'numeric':
        if (!Number.isFinite(kind.value)) return `feature "${name}" must be a finite number`;
        break;
      case 'vector':
        if (kind.value.values.some((v) => !Number.isFinite(v))) return `feature "${name}" must hold finite numbers`;
        break;
      case 'categorical':
      case 'multi':
        break;
    }
  }
  return undefined;
}

const knownEventTypes = new Set(
  Object.values(common.EventType).filter((v): v is number => typeof v === 'number' && v !== common.EventType.UNSPECIFIED),
);

/** Checks one feedback event; the error names `events[i].field`. A time of 0 is stamped by the store. */
export function checkEvent(index: number, event: common.FeedbackEvent, limits: Limits, nowMs: number): void {
  const at = (field: string) => `events[${index}].${field}`;
  checkId(at('event_id'), event.eventId, limits);
  checkId(at('user_id'), event.userId, limits);
  checkId(at('item_id'), event.itemId, limits);
  if (event.requestId !== '') checkId(at('request_id'), event.requestId, limits);
  if (!knownEventTypes.has(event.eventType)) {
    throw new InvalidArgumentError(at('event_type'), `must be one of ${[...knownEventTypes].map((t) => common.EventType[t]).join(', ')}`);
  }
  if (!Number.isFinite(event.dwellSeconds) || event.dwellSeconds < 0) {
    throw new InvalidArgumentError(at('dwell_seconds'), 'must be a finite number >= 0');
  }
  checkTimestampField(at('timestamp_ms'), event.timestampMs);
  if (event.timestampMs > BigInt(nowMs + MAX_FUTURE_SKEW_MS)) {
    throw new InvalidArgumentError(at('timestamp_ms'), 'is more than a day in the future');
  }
}

/** Longest answer an impression may list. */
const MAX_SERVED_ITEMS = 10000;

/** Checks one logged answer; the error names `impressions[i].field`. */
export function checkImpression(index: number, impression: features.Impression, limits: Limits): void {
  const at = (field: string) => `impressions[${index}].${field}`;
  checkId(at('request_id'), impression.requestId, limits);
  checkId(at('user_id'), impression.userId, limits);
  checkTimestampField(at('timestamp_ms'), impression.timestampMs);
  if (impression.items.length > MAX_SERVED_ITEMS) throw new InvalidArgumentError(at('items'), `at most ${MAX_SERVED_ITEMS} items`);
  impression.items.forEach((item, i) => {
    checkId(at(`items[${i}].item_id`), item.itemId, limits);
    if (item.position < 0) throw new InvalidArgumentError(at(`items[${i}].position`), 'must be >= 0');
    if (!Number.isFinite(item.score)) throw new InvalidArgumentError(at(`items[${i}].score`), 'must be a finite number');
  });
  const versions = impression.versions;
  for (const [field, value] of Object.entries({
    retrieval_model: versions?.retrievalModel ?? '',
    index: versions?.index ?? '',
    preranking_model: versions?.prerankingModel ?? '',
    ranking_model: versions?.rankingModel ?? '',
  })) {
    if (value.length > limits.maxIdLength)
      throw new InvalidArgumentError(at(`versions.${field}`), `must be at most ${limits.maxIdLength} characters`);
  }
}
