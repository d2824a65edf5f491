import { type Column, type Dataset, type TrainingSetup } from './types.js';
import { USER_HISTORY, USER_HISTORY_ALL, fittedHistories } from './user-history.js';

/** The context column of each interaction's recent history: the user's previous positive items, newest first. */
export const RECENT_ITEMS = 'recent_items';

/** Interaction rows of each user in time order (ties by row). */
function rowsByUserInTime(dataset: Dataset): Int32Array[] {
  const { interactions } = dataset;
  const counts = new Int32Array(dataset.users.ids.length);
  for (let r = 0; r < interactions.length; r++) counts[interactions.user[r]!]!++;
  const byUser = Array.from(counts, (n) => new Int32Array(n));
  const filled = new Int32Array(counts.length);
  for (let r = 0; r < interactions.length; r++) {
    const u = interactions.user[r]!;
    byUser[u]![filled[u]!++] = r;
  }
  const { timestamp } = interactions;
  for (const rows of byUser) rows.sort((a, b) => timestamp[a]! - timestamp[b]! || a - b);
  return byUser;
}

/**
 * Per interaction: the items of the same user's earlier positive interactions (strictly before it in
 * time, then row order), newest first, at most `length`: what the feature service's history holds
 * when that request is served.
 */
export function recentItemsColumn(dataset: Dataset, length: number): Column {
  const { interactions, items, positiveThreshold } = dataset;
  const values: string[][] = new Array<string[]>(interactions.length);
  for (const rows of rowsByUserInTime(dataset)) {
    const recent: string[] = [];
    for (const r of rows) {
      values[r] = recent.slice();
      if (interactions.value[r]! >= positiveThreshold) {
        recent.unshift(items.ids[interactions.item[r]!]!);
        if (recent.length > length) recent.pop();
      }
    }
  }
  return { kind: 'multi', values };
}

/**
 * The request context of each user as of the end of the train data, one row per user: recent items
 * are the newest positive train interactions; any other context column takes the value of the user's
 * latest train interaction (missing when the user has none), the user histories all the user's fitted
 * items. Evaluation embeds users with it.
 */
export function userStateContext(setup: TrainingSetup, historyLength: number): { length: number; columns: Record<string, Column> } {
  const { dataset, split } = setup;
  const { interactions, items, positiveThreshold } = dataset;
  const users = dataset.users.ids.length;
  const latest = new Int32Array(users).fill(-1);
  const recent: string[][] = Array.from({ length: users }, () => []);
  rowsByUserInTime(dataset).forEach((rows, u) => {
    for (const r of rows) {
      if (split[r] !== 1) continue;
      latest[u] = r;
      if (interactions.value[r]! >= positiveThreshold) recent[u]!.unshift(items.ids[interactions.item[r]!]!);
    }
    recent[u]!.length = Math.min(recent[u]!.length, historyLength);
  });
  const columns: Record<string, Column> = {};
  for (const [name, column] of Object.entries(interactions.context)) {
    if (name === RECENT_ITEMS) columns[name] = { kind: 'multi', values: recent };
    // The whole fitted history, newest first: the encoder keeps the slots the model has.
    else if (name === USER_HISTORY || name === USER_HISTORY_ALL)
      columns[name] = { kind: 'multi', values: fittedHistories(setup, name === USER_HISTORY) };
    else if (column.kind === 'numeric')
      columns[name] = { kind: 'numeric', values: Float64Array.from(latest, (r) => (r < 0 ? NaN : column.values[r]!)) };
    else if (column.kind === 'multi')
      columns[name] = { kind: 'multi', values: Array.from(latest, (r) => (r < 0 ? [] : column.values[r]!)) };
    else columns[name] = { kind: 'categorical', values: Array.from(latest, (r) => (r < 0 ? '' : column.values[r]!)) };
  }
  return { length: users, columns };
}
