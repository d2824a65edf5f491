import { common, featureValue, type features } from '@recsys/contracts';
import { type FeatureSpec, RECENT_ITEMS, USER_HISTORY, USER_HISTORY_ALL } from '@recsys/data';

/** A raw feature value as stored: categorical text, a number, or several categorical values. */
export type RawValue = string | number | readonly string[] | undefined;

/** One user, item or request context as the model inputs read it: values by the training column name. */
export interface FeatureRow {
  /** The entity id ('' for a request context). */
  readonly id: string;
  get(column: string): RawValue;
}

class MapRow implements FeatureRow {
  constructor(
    readonly id: string,
    private readonly values: Readonly<Record<string, RawValue>>,
    private readonly stored: common.Features | undefined,
  ) {}

  get(column: string): RawValue {
    return column in this.values ? this.values[column] : featureValue(this.stored?.values[column]);
  }
}

/** A user as the feature service answered (features empty for an unknown user). */
export function userRow(userId: string, user: features.User | undefined): FeatureRow {
  return new MapRow(userId, {}, user?.features);
}

/** An item as the feature service answered; category and created_at are item fields, not features. */
export function itemRow(itemId: string, item: features.Item | undefined): FeatureRow {
  if (!item) return new MapRow(itemId, {}, undefined);
  const fields: Record<string, RawValue> = {};
  if (item.category !== '') fields.category = item.category;
  // The trainer's tables keep created_at as Unix ms too.
  if (item.createdAtMs > 0n) fields.created_at = Number(item.createdAtMs);
  return new MapRow(itemId, fields, item.features);
}

/** Event types that make an item part of the user's recent positives (as the trainer's history counts them). */
const POSITIVE_EVENTS: ReadonlySet<common.EventType> = new Set([
  common.EventType.VIEW,
  common.EventType.CLICK,
  common.EventType.ADD_TO_CART,
  common.EventType.PURCHASE,
  common.EventType.LIKE,
]);

/**
 * The request's recent positive items, newest first, at most `length`: the context's items, then the
 * stored history without the items the context already reported (a client sends what it also records
 * as feedback). Repeats within the history stay, as in the trainer's recent_items.
 */
export function recentItems(context: common.UserContext | undefined, history: readonly features.HistoryEntry[], length: number): string[] {
  const out: string[] = [];
  const fromContext = new Set<string>();
  // Context items without a type were viewed; negative feedback never counts.
  const positive = (type: common.EventType) => type === common.EventType.UNSPECIFIED || POSITIVE_EVENTS.has(type);
  for (const item of context?.recentItems ?? []) {
    if (out.length >= length) return out;
    if (item.itemId === '' || fromContext.has(item.itemId) || !positive(item.eventType)) continue;
    fromContext.add(item.itemId);
    out.push(item.itemId);
  }
  for (const entry of history) {
    if (out.length >= length) break;
    if (fromContext.has(entry.itemId) || entry.eventType === common.EventType.UNSPECIFIED || !positive(entry.eventType)) continue;
    out.push(entry.itemId);
  }
  return out;
}

/**
 * The user's history as the trainer's user history columns hold it (USER_HISTORY_ALL: every item the
 * feature service recorded; USER_HISTORY: the positive ones), newest first, at most `length`: the
 * context's items, then the stored history without the items the context already reported.
 */
export function userHistoryItems(
  context: common.UserContext | undefined,
  history: readonly features.HistoryEntry[],
  length: number,
  positiveOnly: boolean,
): string[] {
  if (positiveOnly) return recentItems(context, history, length);
  const out: string[] = [];
  const fromContext = new Set<string>();
  for (const item of context?.recentItems ?? []) {
    if (out.length >= length) return out;
    if (item.itemId === '' || fromContext.has(item.itemId)) continue;
    fromContext.add(item.itemId);
    out.push(item.itemId);
  }
  for (const entry of history) {
    if (out.length >= length) break;
    if (!fromContext.has(entry.itemId)) out.push(entry.itemId);
  }
  return out;
}

/** The history columns a model may read from the request context. */
const HISTORY_COLUMNS: ReadonlySet<string> = new Set([RECENT_ITEMS, USER_HISTORY, USER_HISTORY_ALL]);

/** The most history slots any of a spec's history inputs has (recent items, user history): what a request reads; 0 for none. */
export function historySlots(spec: FeatureSpec): number {
  let slots = 0;
  for (const f of spec.features)
    if (f.kind === 'multi' && f.source === 'context' && HISTORY_COLUMNS.has(f.column)) slots = Math.max(slots, f.maxValues);
  return slots;
}

/** The request context as a row: `recent_items`, the user history columns, and the request's attributes by name. */
export function contextRow(
  context: common.UserContext | undefined,
  history: readonly features.HistoryEntry[],
  historyLength: number,
): FeatureRow {
  const values: Record<string, RawValue> = { ...(context?.attributes ?? {}) };
  values[RECENT_ITEMS] = recentItems(context, history, historyLength);
  values[USER_HISTORY] = values[RECENT_ITEMS];
  values[USER_HISTORY_ALL] = userHistoryItems(context, history, historyLength, false);
  return new MapRow('', values, undefined);
}
