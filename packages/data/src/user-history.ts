import { ID_COLUMNS } from './encode.js';
import { trainCounts } from './split.js';
import { protocolIsValidation } from './hash.js';
import { withColumns } from './table.js';
import { type CategoricalFeature, type Column, type EntityTable, type MultiCategoricalFeature, type TrainingSetup } from './types.js';

/**
 * The user's history as the strong track of PROTOCOL.md defines it: the items of the user's fitted
 * (train) rows, newest first, with the example's own item removed. Context columns, so a model takes
 * them as it takes `recent_items`; serving fills them from the feature service's history.
 */
/** The user's fitted positive items (the two-tower's history). */
export const USER_HISTORY = 'user_history';
/** The user's fitted items of any value (DLRM's history: it cannot reveal the label). */
export const USER_HISTORY_ALL = 'user_history_all';

export interface UserHistoryOptions {
  /** Slots of the user tower's history (fitted positives, newest first); 0 leaves it out. */
  tower: number;
  /** Slots of the ranking model's history; 0 leaves it out. */
  ranking: number;
  /**
   * Which of the user's fitted items the ranking history holds: any value (PROTOCOL.md's choice: it cannot
   * reveal the label) or positives only (what the feature service's history holds when it is loaded with
   * positive events, as recsys-up does).
   */
  rankingItems: 'all' | 'positive';
}

export const NO_USER_HISTORY: UserHistoryOptions = { tower: 0, ranking: 0, rankingItems: 'all' };

/** Each user's fitted rows (setup.fittedRows, else the train rows), newest first (ties: later rows first). */
function fittedRowsByUser(setup: TrainingSetup, positiveOnly: boolean): Int32Array[] {
  const { interactions, positiveThreshold } = setup.dataset;
  const fitted = setup.fittedRows ?? setup.split;
  const lists: number[][] = Array.from({ length: setup.dataset.users.ids.length }, () => []);
  for (let r = 0; r < interactions.length; r++) {
    if (fitted[r] !== 1) continue;
    if (positiveOnly && !(interactions.value[r]! >= positiveThreshold)) continue;
    lists[interactions.user[r]!]!.push(r);
  }
  const { timestamp } = interactions;
  return lists.map((rows) => Int32Array.from(rows.sort((a, b) => timestamp[b]! - timestamp[a]! || b - a)));
}

/** Per user: the item ids of its fitted rows (positives only, or any value), newest first. */
export function fittedHistories(setup: TrainingSetup, positiveOnly: boolean): string[][] {
  const { interactions, items } = setup.dataset;
  return fittedRowsByUser(setup, positiveOnly).map((rows) => Array.from(rows, (r) => items.ids[interactions.item[r]!]!));
}

/**
 * Per interaction row: the user's fitted items (newest first, at most `length`) without the row's own
 * item. Rows whose item is not among them share one array per user.
 */
export function userHistoryColumn(setup: TrainingSetup, positiveOnly: boolean, length: number): Column {
  const { interactions, items } = setup.dataset;
  const histories = fittedHistories(setup, positiveOnly);
  const capped = histories.map((h) => h.slice(0, length));
  const longer = histories.map((h) => h.slice(0, length + 1));
  const values: string[][] = new Array<string[]>(interactions.length);
  for (let r = 0; r < interactions.length; r++) {
    const u = interactions.user[r]!;
    const target = items.ids[interactions.item[r]!]!;
    const base = capped[u]!;
    if (!base.includes(target)) values[r] = base;
    else values[r] = longer[u]!.filter((id) => id !== target).slice(0, length);
  }
  return { kind: 'multi', values };
}

function historyFeature(setup: TrainingSetup, name: string, maxValues: number): MultiCategoricalFeature {
  // The history shares the item id's vocabulary (or buckets), so serving encodes any catalogue item as training did.
  const itemId = [...setup.itemTower.features, ...setup.ranking.features].find(
    (f): f is CategoricalFeature => f.kind === 'categorical' && f.source === 'item' && f.column === ID_COLUMNS.item,
  );
  if (!itemId) throw new Error('user history: the setup has no item id feature to share a vocabulary with');
  const { vocabulary, hashBuckets, unknown } = itemId;
  return { kind: 'multi', name, source: 'context', column: name, vocabulary, hashBuckets, unknown, maxValues };
}

/**
 * The setup with the user history columns built from its fitted rows (split 1) and added to the user
 * tower's and the ranking model's specs. Build it after holdOutValidation, never before: the history
 * of a tuning run must not hold its validation rows.
 */
export function withUserHistory(setup: TrainingSetup, options: UserHistoryOptions): TrainingSetup {
  for (const [field, n] of [
    ['tower', options.tower],
    ['ranking', options.ranking],
  ] as const)
    if (!Number.isInteger(n) || n < 0) throw new Error(`user history: ${field} length must be a whole number >= 0, got ${n}`);
  if (options.tower === 0 && options.ranking === 0) return setup;
  const context: Record<string, Column> = { ...setup.dataset.interactions.context };
  const userTower = { features: [...setup.userTower.features] };
  const ranking = { features: [...setup.ranking.features] };
  const rankingName = options.rankingItems === 'all' ? USER_HISTORY_ALL : USER_HISTORY;
  // One positive column serves both models (newest first: each feature keeps its own first slots).
  const positives = Math.max(options.tower, rankingName === USER_HISTORY ? options.ranking : 0);
  if (positives > 0) context[USER_HISTORY] = userHistoryColumn(setup, true, positives);
  if (options.tower > 0) userTower.features.push(historyFeature(setup, USER_HISTORY, options.tower));
  if (options.ranking > 0) {
    if (rankingName === USER_HISTORY_ALL) context[USER_HISTORY_ALL] = userHistoryColumn(setup, false, options.ranking);
    // Placed before the continuous features, as the other multi-valued ones.
    const at = ranking.features.findIndex((f) => f.kind === 'continuous');
    ranking.features.splice(at < 0 ? ranking.features.length : at, 0, historyFeature(setup, rankingName, options.ranking));
  }
  return {
    ...setup,
    dataset: { ...setup.dataset, interactions: { ...setup.dataset.interactions, context } },
    userTower,
    ranking,
  };
}

/** Share of the train rows a time-split setup holds out for validation (the latest ones). */
export const TIME_VALIDATION_FRACTION = 0.1;

/**
 * Per interaction, 1 for the validation slice of train: for a hash split the protocol's rule
 * ((h div 10) mod 10 == 0 over the same keys); for a time split the latest 10% of the train rows.
 */
export function validationMask(setup: TrainingSetup): Uint8Array {
  const { interactions } = setup.dataset;
  const mask = new Uint8Array(interactions.length);
  const rule = setup.splitRule ?? { kind: 'time' as const };
  if (rule.kind === 'hash') {
    for (let r = 0; r < interactions.length; r++)
      if (setup.split[r] === 1 && protocolIsValidation(rule.userKey(interactions.user[r]!), rule.itemKey(interactions.item[r]!)))
        mask[r] = 1;
    return mask;
  }
  const train: number[] = [];
  for (let r = 0; r < interactions.length; r++) if (setup.split[r] === 1) train.push(r);
  train.sort((a, b) => interactions.timestamp[a]! - interactions.timestamp[b]! || a - b);
  const held = Math.round(train.length * TIME_VALIDATION_FRACTION);
  for (const r of train.slice(train.length - held)) mask[r] = 1;
  return mask;
}

/**
 * The setup a tuning run fits and validates on: the validation slice becomes its "test" side (split 0),
 * the real test rows are marked 2 and never read, and the train counts are recounted over the fitted rows.
 */
export function holdOutValidation(setup: TrainingSetup): TrainingSetup {
  const mask = validationMask(setup);
  const split = Uint8Array.from(setup.split, (s, r) => (s !== 1 ? 2 : mask[r] ? 0 : 1));
  const { dataset } = setup;
  const counts = trainCounts(dataset.interactions, split, dataset.users.ids.length, dataset.items.ids.length);
  const recount = (table: EntityTable, values: Float64Array) =>
    'train_count' in table.columns ? withColumns(table, { train_count: { kind: 'numeric', values } }) : table;
  return {
    ...setup,
    split,
    dataset: { ...dataset, users: recount(dataset.users, counts.user), items: recount(dataset.items, counts.item) },
  };
}
