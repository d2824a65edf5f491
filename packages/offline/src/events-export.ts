import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { common, featureValue, type features } from '@recsys/contracts';
import { createInteractions, tableFromRows, timeSplit, writeDatasetFiles, type Dataset, type Interactions, type Row } from '@recsys/data';
import { DEFAULT_POSITIVE_TYPES, listAll, readEventLog, type EventLogSource } from './event-log.js';

/** The export's format version, in export.json; it changes only when the files' meaning does. */
export const EVENTS_EXPORT_FORMAT = 'recsys.events-export.v1';

export interface EventsExportOptions {
  /** Log entries from this instant (Unix ms, inclusive). */
  sinceMs: number;
  /** Log entries up to this instant (Unix ms, inclusive). */
  untilMs: number;
  outDir: string;
  /** An impression with no positive feedback within this long after it is a negative (label 0). */
  windowMs: number;
  /** Feedback types that are positives (label 1); DISLIKE is always a negative. */
  positiveTypes?: readonly common.EventType[];
  /** The latest share of interactions (by time) in the test split. */
  testFraction?: number;
  pageSize?: number;
}

export interface EventsExportSummary {
  format: string;
  since_ms: number;
  until_ms: number;
  window_ms: number;
  positive_types: string[];
  log_entries: number;
  impressions: number;
  impressed_items: number;
  feedback_events: number;
  interactions: number;
  positives: number;
  negatives: number;
  /** Impressed items without positive feedback whose window had not ended by until_ms: left out (unknown yet). */
  pending: number;
  users: number;
  items: number;
  /** Users/items the log names but the feature service does not hold: written without features. */
  users_without_features: number;
  items_without_features: number;
  split: { kind: 'time'; test_fraction: number; cutoff_timestamp_s: number; train_rows: number; test_rows: number };
  files: string[];
}

interface Row0 {
  user: string;
  item: string;
  label: number;
  timeMs: number;
}

/** Features the trainer derives itself (the loader stores them for serving): not exported. */
const DERIVED_FEATURES = new Set(['train_count']);

/**
 * Turns the event log between two instants into the trainer's dataset files (`--data files:DIR`):
 *  - interactions.csv (user_id,item_id,value,timestamp in seconds, oldest first): each positive feedback
 *    event is a row with value 1 (one per answer and item when it names its request id, otherwise one per
 *    event; DISLIKE is 0); each item an answer showed that got no positive feedback from the user within
 *    `windowMs` (by request id, or the same user and item) is a row with value 0 at the answer's time.
 *    Items whose window had not ended by `untilMs` are left out (pending).
 *  - interactions-train.csv / interactions-test.csv: the same rows split by time (the latest `testFraction`
 *    are test; @recsys/data's timeSplit, the split the trainer's time split makes of interactions.csv).
 *  - users.jsonl, items.csv: every user and item the feature service holds, with their features, plus the
 *    ones the log names that it does not hold (no features).
 *  - export.json: the summary (this function's answer).
 */
export async function exportEvents(source: EventLogSource, options: EventsExportOptions): Promise<EventsExportSummary> {
  const { sinceMs, untilMs, windowMs } = options;
  const positiveTypes = new Set(options.positiveTypes ?? DEFAULT_POSITIVE_TYPES);
  const testFraction = options.testFraction ?? 0.2;
  const log = await readEventLog(source, sinceMs, untilMs, options.pageSize);

  // Positives: one per (answer, item) for feedback naming its answer, one per event otherwise.
  const rows: Row0[] = [];
  const byAnswer = new Set<string>();
  const byUserItem = new Map<string, number[]>();
  let positives = 0;
  for (const { event, timeMs } of log.feedback) {
    if (event.eventType === common.EventType.DISLIKE) {
      rows.push({ user: event.userId, item: event.itemId, label: 0, timeMs });
      continue;
    }
    if (!positiveTypes.has(event.eventType)) continue;
    const userItem = `${event.userId}\u0000${event.itemId}`;
    const times = byUserItem.get(userItem);
    if (times) times.push(timeMs);
    else byUserItem.set(userItem, [timeMs]);
    if (event.requestId !== '') {
      const answer = `${event.requestId}\u0000${event.itemId}`;
      if (byAnswer.has(answer)) continue;
      byAnswer.add(answer);
    }
    rows.push({ user: event.userId, item: event.itemId, label: 1, timeMs });
    positives++;
  }

  // Negatives: shown, and no positive within the window.
  let impressedItems = 0;
  let pending = 0;
  let negatives = rows.length - positives;
  for (const { impression, timeMs } of log.impressions) {
    for (const served of impression.items) {
      impressedItems++;
      if (byAnswer.has(`${impression.requestId}\u0000${served.itemId}`)) continue;
      const times = byUserItem.get(`${impression.userId}\u0000${served.itemId}`);
      if (times?.some((t) => t >= timeMs && t <= timeMs + windowMs)) continue;
      if (timeMs + windowMs > untilMs) {
        pending++;
        continue;
      }
      rows.push({ user: impression.userId, item: served.itemId, label: 0, timeMs });
      negatives++;
    }
  }
  rows.sort((a, b) => a.timeMs - b.timeMs);

  const users = await listAll(
    (request) => source.listUsers(request),
    (page) => page.users,
    (user) => user.userId,
    options.pageSize,
  );
  const items = await listAll(
    (request) => source.scanItems(request),
    (page) => page.items,
    (item) => item.itemId,
    options.pageSize,
  );
  const userIds = [...users.keys()];
  const itemIds = [...items.keys()];
  const userRows: Partial<Row>[] = userIds.map((id) => featureRow(users.get(id)!.features));
  const itemRows: Partial<Row>[] = itemIds.map((id) => itemRow(items.get(id)!));
  let usersWithoutFeatures = 0;
  let itemsWithoutFeatures = 0;
  for (const row of rows) {
    if (!users.has(row.user)) {
      users.set(row.user, undefined as unknown as features.User);
      userIds.push(row.user);
      userRows.push({});
      usersWithoutFeatures++;
    }
    if (!items.has(row.item)) {
      items.set(row.item, undefined as unknown as features.Item);
      itemIds.push(row.item);
      itemRows.push({ category: '' });
      itemsWithoutFeatures++;
    }
  }
  const userTable = tableFromRows(userIds, userRows);
  const itemTable = tableFromRows(itemIds, itemRows);
  if (!itemTable.columns.category) itemTable.columns.category = { kind: 'categorical', values: new Array<string>(itemIds.length).fill('') };
  if (!itemTable.columns.created_at) itemTable.columns.created_at = { kind: 'numeric', values: new Float64Array(itemIds.length).fill(NaN) };

  const interactions = createInteractions(rows.length);
  rows.forEach((row, r) => {
    interactions.user[r] = userTable.index.get(row.user)!;
    interactions.item[r] = itemTable.index.get(row.item)!;
    interactions.value[r] = row.label;
    interactions.timestamp[r] = row.timeMs / 1000;
  });
  const dataset: Dataset = { name: 'events', users: userTable, items: itemTable, interactions, positiveThreshold: 1 };
  writeDatasetFiles(dataset, options.outDir);

  const split = timeSplit(interactions, testFraction);
  const side = (keep: 0 | 1) => subset(interactions, split, keep);
  const train = side(1);
  const test = side(0);
  writeInteractions(options.outDir, 'interactions-train.csv', dataset, train);
  writeInteractions(options.outDir, 'interactions-test.csv', dataset, test);
  let cutoff = -Infinity;
  for (let r = 0; r < train.length; r++) cutoff = Math.max(cutoff, train.timestamp[r]!);

  const summary: EventsExportSummary = {
    format: EVENTS_EXPORT_FORMAT,
    since_ms: sinceMs,
    until_ms: untilMs,
    window_ms: windowMs,
    positive_types: [...positiveTypes].map((t) => common.EventType[t]),
    log_entries: log.entries,
    impressions: log.impressions.length,
    impressed_items: impressedItems,
    feedback_events: log.feedback.length,
    interactions: rows.length,
    positives,
    negatives,
    pending,
    users: userIds.length,
    items: itemIds.length,
    users_without_features: usersWithoutFeatures,
    items_without_features: itemsWithoutFeatures,
    split: {
      kind: 'time',
      test_fraction: testFraction,
      cutoff_timestamp_s: Number.isFinite(cutoff) ? cutoff : 0,
      train_rows: train.length,
      test_rows: test.length,
    },
    files: ['users.jsonl', 'items.csv', 'interactions.csv', 'interactions-train.csv', 'interactions-test.csv', 'export.json'],
  };
  writeFileSync(join(options.outDir, 'export.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

function subset(interactions: Interactions, split: Uint8Array, keep: 0 | 1): Interactions {
  const rows: number[] = [];
  for (let r = 0; r < interactions.length; r++) if (split[r] === keep) rows.push(r);
  const out = createInteractions(rows.length);
  rows.forEach((r, k) => {
    out.user[k] = interactions.user[r]!;
    out.item[k] = interactions.item[r]!;
    out.value[k] = interactions.value[r]!;
    out.timestamp[k] = interactions.timestamp[r]!;
  });
  return out;
}

/** interactions.csv's format for a subset of the rows (the users and items are the dataset's). */
function writeInteractions(dir: string, file: string, dataset: Dataset, interactions: Interactions): void {
  const quote = (cell: string) => (/[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell);
  const lines = ['user_id,item_id,value,timestamp'];
  for (let r = 0; r < interactions.length; r++) {
    lines.push(
      [
        quote(dataset.users.ids[interactions.user[r]!]!),
        quote(dataset.items.ids[interactions.item[r]!]!),
        String(interactions.value[r]),
        String(interactions.timestamp[r]),
      ].join(','),
    );
  }
  writeFileSync(join(dir, file), lines.join('\n') + '\n');
}

function featureRow(values: common.Features | undefined): Partial<Row> {
  const row: Partial<Row> = {};
  for (const [name, value] of Object.entries(values?.values ?? {})) {
    if (DERIVED_FEATURES.has(name)) continue;
    const cell = featureValue(value); // vectors have no column kind in the dataset model: left out
    if (cell !== undefined) row[name] = cell;
  }
  return row;
}

function itemRow(item: features.Item): Partial<Row> {
  const row = featureRow(item.features);
  delete row.category;
  delete row.created_at;
  row.category = item.category;
  if (item.createdAtMs > 0n) row.created_at = Number(item.createdAtMs);
  return row;
}
