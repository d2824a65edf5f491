import type { MessageInitShape } from '@bufbuild/protobuf';
import { common, type features } from '@recsys/contracts';
import type { Column, EntityTable, TrainingSetup } from '@recsys/data';

type UserInit = MessageInitShape<typeof features.UserSchema>;
type ItemInit = MessageInitShape<typeof features.ItemSchema>;
type EventInit = MessageInitShape<typeof common.FeedbackEventSchema>;
type FeaturesInit = MessageInitShape<typeof common.FeaturesSchema>;

/** The feature-service calls loading needs; the typed gRPC client satisfies it. */
export interface FeatureWriter {
  upsertUsers(request: { users: UserInit[] }): Promise<features.UpsertUsersResponse>;
  upsertItems(request: { items: ItemInit[] }): Promise<features.UpsertItemsResponse>;
  recordFeedback(request: { events: EventInit[] }): Promise<features.RecordFeedbackResponse>;
}

export interface FeatureLoadOptions {
  /** Which positive interactions become history and popularity: all (default), the train split, or none. */
  history?: 'all' | 'train' | 'none';
  /** Rows per call; the feature service's MAX_BATCH_SIZE bounds it (default 5000). */
  batchSize?: number;
  onProgress?: (stage: 'users' | 'items' | 'events', done: number, total: number) => void;
}

export interface FeatureLoadResult {
  users: number;
  items: number;
  events: number;
  duplicates: number;
  rejected: { kind: 'user' | 'item'; id: string; reason: string }[];
}

/** Item columns that are Item fields rather than features. */
const ITEM_FIELDS = new Set(['category', 'created_at']);

function featuresOf(table: EntityTable, row: number, skip: ReadonlySet<string>): FeaturesInit {
  const values: FeaturesInit['values'] = {};
  for (const [name, column] of Object.entries(table.columns)) {
    if (skip.has(name)) continue;
    const value = cell(column, row);
    if (value) values[name] = value;
  }
  return { values };
}

function cell(column: Column, row: number): MessageInitShape<typeof common.FeatureValueSchema> | undefined {
  switch (column.kind) {
    case 'categorical': {
      const value = column.values[row]!;
      return value === '' ? undefined : { kind: { case: 'categorical', value } };
    }
    case 'multi':
      return { kind: { case: 'multi', value: { values: column.values[row]! } } };
    case 'numeric': {
      const value = column.values[row]!;
      return Number.isFinite(value) ? { kind: { case: 'numeric', value } } : undefined;
    }
  }
}

/** The users of a training setup as the feature service stores them (train_count included). */
export function userRecords(setup: TrainingSetup): UserInit[] {
  const users = setup.dataset.users;
  return users.ids.map((userId, row) => ({ userId, features: featuresOf(users, row, new Set()) }));
}

/** The items of a training setup: category and created_at as item fields, every other column a feature. */
export function itemRecords(setup: TrainingSetup): ItemInit[] {
  const items = setup.dataset.items;
  const category = items.columns.category;
  const createdAt = items.columns.created_at;
  return items.ids.map((itemId, row) => {
    const created = createdAt?.kind === 'numeric' ? createdAt.values[row]! : NaN;
    return {
      itemId,
      category: category?.kind === 'categorical' ? category.values[row]! : '',
      createdAtMs: Number.isFinite(created) && created > 0 ? BigInt(Math.round(created)) : 0n,
      features: featuresOf(items, row, ITEM_FIELDS),
    };
  });
}

/** Positive interactions as view events, oldest first, with ids that make a reload change nothing. */
export function historyEvents(setup: TrainingSetup, which: 'all' | 'train'): EventInit[] {
  const { interactions, users, items, positiveThreshold } = setup.dataset;
  const rows: number[] = [];
  for (let r = 0; r < interactions.length; r++) {
    if (interactions.value[r]! < positiveThreshold) continue;
    if (which === 'train' && setup.split[r] !== 1) continue;
    rows.push(r);
  }
  rows.sort((a, b) => interactions.timestamp[a]! - interactions.timestamp[b]! || a - b);
  return rows.map((r) => ({
    eventId: `load-${setup.dataset.name}-${r}`,
    userId: users.ids[interactions.user[r]!]!,
    itemId: items.ids[interactions.item[r]!]!,
    eventType: common.EventType.VIEW,
    timestampMs: BigInt(Math.round(interactions.timestamp[r]! * 1000)),
  }));
}

async function inBatches<T>(
  rows: T[],
  size: number,
  send: (batch: T[], offset: number) => Promise<void>,
  progress?: (done: number) => void,
): Promise<void> {
  for (let offset = 0; offset < rows.length; offset += size) {
    await send(rows.slice(offset, offset + size), offset);
    progress?.(Math.min(rows.length, offset + size));
  }
}

/**
 * Loads a training setup into the feature service: users and items with every feature the models
 * read (train counts included), and the positive interactions as history and popularity.
 * Idempotent: rows are replaced and events carry stable ids.
 */
export async function loadFeatures(
  writer: FeatureWriter,
  setup: TrainingSetup,
  options: FeatureLoadOptions = {},
): Promise<FeatureLoadResult> {
  const size = options.batchSize ?? 1000;
  const result: FeatureLoadResult = { users: 0, items: 0, events: 0, duplicates: 0, rejected: [] };
  const users = userRecords(setup);
  await inBatches(
    users,
    size,
    async (batch) => {
      const answer = await writer.upsertUsers({ users: batch });
      result.users += answer.stored;
      for (const r of answer.rejected) result.rejected.push({ kind: 'user', id: r.id, reason: r.reason });
    },
    (done) => options.onProgress?.('users', done, users.length),
  );
  const items = itemRecords(setup);
  await inBatches(
    items,
    size,
    async (batch) => {
      const answer = await writer.upsertItems({ items: batch });
      result.items += answer.stored;
      for (const r of answer.rejected) result.rejected.push({ kind: 'item', id: r.id, reason: r.reason });
    },
    (done) => options.onProgress?.('items', done, items.length),
  );
  const which = options.history ?? 'all';
  if (which !== 'none') {
    const events = historyEvents(setup, which);
    await inBatches(
      events,
      size,
      async (batch) => {
        const answer = await writer.recordFeedback({ events: batch });
        result.events += answer.accepted;
        result.duplicates += answer.duplicates;
      },
      (done) => options.onProgress?.('events', done, events.length),
    );
  }
  return result;
}
