import { ID_COLUMNS } from './encode.js';
import { hashSplit, timeSplit, trainCounts } from './split.js';
import { RECENT_ITEMS, recentItemsColumn } from './history.js';
import { withColumns } from './table.js';
import {
  type CategoricalFeature,
  type Column,
  type ContinuousFeature,
  type Dataset,
  type Feature,
  type FeatureSource,
  type MultiCategoricalFeature,
  type TrainingSetup,
} from './types.js';

export interface SetupOptions {
  /** 'hash' (default): protocolIsTrain over the user and item rows (+1); 'time': the latest interactions are test. */
  split?: 'hash' | 'time';
  /** For the time split; defaults to 0.2. */
  testFraction?: number;
  /** A vocabulary (with '<unk>') longer than this becomes hashBuckets = maxVocabulary. No limit by default. */
  maxVocabulary?: number;
  /** The most values a multi-valued feature keeps per row; defaults to 16 (fewer when no row has that many). */
  maxValues?: number;
  /**
   * Adds the `recent_items` context (each interaction's previous positive items, newest first) of this
   * length to the user tower and the ranking model; defaults to 10, 0 leaves it out.
   */
  historyLength?: number;
}

// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { log1p, max } = Math;

export const UNKNOWN_TOKEN = '<unk>';
/** Columns that are not model inputs: created_at feeds re-ranking; train_count is added as a log1p feature. */
const NOT_FEATURES = new Set(['created_at', 'train_count']);

/** '<unk>' then the distinct non-empty values, sorted. */
function vocabularyOf(values: Iterable<string>): string[] {
  const distinct = new Set(values);
  distinct.delete('');
  distinct.delete(UNKNOWN_TOKEN);
  return [UNKNOWN_TOKEN, ...[...distinct].sort()];
}

function* flat(values: string[][]): Iterable<string> {
  for (const row of values) yield* row;
}

/** Mean and std of `value(row)` over the train interactions, NaN skipped; std 1 when there is no spread. */
function trainStats(length: number, split: Uint8Array, value: (r: number) => number): { mean: number; std: number } {
  // Welford: stable for large values such as Unix times.
  let count = 0;
  let mean = 0;
  let m2 = 0;
  for (let r = 0; r < length; r++) {
    if (split[r] !== 1) continue;
    const x = value(r);
    if (x !== x) continue; // NaN
    count++;
    const delta = x - mean;
    mean += delta / count;
    m2 += delta * (x - mean);
  }
  if (count === 0) return { mean: 0, std: 1 };
  const std = Math.sqrt(m2 / count);
  return { mean, std: std > 1e-12 && Number.isFinite(std) ? std : 1 };
}

/** A TrainingSetup for any dataset: split, train counts, and the three specs over every usable column. */
export function buildTrainingSetup(dataset: Dataset, options: SetupOptions = {}): TrainingSetup {
  const historyLength = options.historyLength ?? 10;
  const interactions =
    historyLength > 0
      ? { ...dataset.interactions, context: { ...dataset.interactions.context, [RECENT_ITEMS]: recentItemsColumn(dataset, historyLength) } }
      : dataset.interactions;
  const mode = options.split ?? 'hash';
  const split =
    mode === 'hash'
      ? hashSplit(
          interactions,
          (u) => u + 1,
          (i) => i + 1,
        )
      : timeSplit(interactions, options.testFraction ?? 0.2);
  const counts = trainCounts(interactions, split, dataset.users.ids.length, dataset.items.ids.length);
  const users = withColumns(dataset.users, { train_count: { kind: 'numeric', values: counts.user } });
  const items = withColumns(dataset.items, { train_count: { kind: 'numeric', values: counts.item } });
  const maxVocabulary = options.maxVocabulary ?? Infinity;
  const maxValuesCap = options.maxValues ?? 16;

  const tables: Record<FeatureSource, Record<string, Column>> = { user: users.columns, item: items.columns, context: interactions.context };
  const usable = (source: FeatureSource): [string, Column][] =>
    Object.entries(tables[source]).filter(([name]) => !NOT_FEATURES.has(name) && (source === 'context' || name !== ID_COLUMNS[source]));
  const sources: FeatureSource[] = ['user', 'item', 'context'];
  // A column name used by two sources (or clashing with an id or count feature) gets a source prefix.
  const taken = new Set(['user_id', 'item_id', 'user_train_count', 'item_train_count']);
  const uses = new Map<string, number>();
  for (const source of sources) for (const [name] of usable(source)) uses.set(name, (uses.get(name) ?? 0) + 1);
  const nameOf = (source: FeatureSource, column: string): string => {
    let name = uses.get(column) === 1 && !taken.has(column) ? column : `${source}_${column}`;
    for (let k = 2; taken.has(name); k++) name = `${source}_${column}_${k}`;
    taken.add(name);
    return name;
  };

  const categorical = (source: FeatureSource, name: string, column: string, values: Iterable<string>): CategoricalFeature => {
    const vocabulary = vocabularyOf(values);
    return vocabulary.length > maxVocabulary
      ? { kind: 'categorical', name, source, column, hashBuckets: maxVocabulary, unknown: 0 }
      : { kind: 'categorical', name, source, column, vocabulary, unknown: 0 };
  };
  const multi = (source: FeatureSource, name: string, column: string, values: string[][]): MultiCategoricalFeature => {
    // Recent items share the item id vocabulary, so serving can encode any catalogue item.
    const vocabulary = column === RECENT_ITEMS && source === 'context' ? vocabularyOf(dataset.items.ids) : vocabularyOf(flat(values));
    let longest = 1;
    for (const row of values) longest = max(longest, row.length);
    const maxValues = Math.max(1, Math.min(longest, maxValuesCap));
    return vocabulary.length > maxVocabulary
      ? { kind: 'multi', name, source, column, hashBuckets: maxVocabulary, unknown: 0, maxValues }
      : { kind: 'multi', name, source, column, vocabulary, unknown: 0, maxValues };
  };
  const rowOf: Record<FeatureSource, (r: number) => number> = {
    user: (r) => interactions.user[r]!,
    item: (r) => interactions.item[r]!,
    context: (r) => r,
  };
  const continuous = (
    source: FeatureSource,
    name: string,
    column: string,
    values: Float64Array,
    transform: ContinuousFeature['transform'],
  ) => {
    const row = rowOf[source];
    const f = transform === 'log1p' ? log1p : (x: number) => x;
    const { mean, std } = trainStats(interactions.length, split, (r) => f(values[row(r)]!));
    const feature: ContinuousFeature = { kind: 'continuous', name, source, column, transform, mean, std, missing: mean };
    return feature;
  };

  const cats: Record<FeatureSource, Feature[]> = { user: [], item: [], context: [] };
  const multis: Record<FeatureSource, Feature[]> = { user: [], item: [], context: [] };
  const numbers: Record<FeatureSource, Feature[]> = { user: [], item: [], context: [] };
  cats.user.push(categorical('user', 'user_id', ID_COLUMNS.user, users.ids));
  cats.item.push(categorical('item', 'item_id', ID_COLUMNS.item, items.ids));
  for (const source of sources) {
    for (const [column, data] of usable(source)) {
      const name = nameOf(source, column);
      if (data.kind === 'categorical') cats[source].push(categorical(source, name, column, data.values));
      else if (data.kind === 'multi') multis[source].push(multi(source, name, column, data.values));
      else numbers[source].push(continuous(source, name, column, data.values, 'identity'));
    }
  }
  const countFeatures = [
    continuous('user', 'user_train_count', 'train_count', counts.user, 'log1p'),
    continuous('item', 'item_train_count', 'train_count', counts.item, 'log1p'),
  ];

  return {
    dataset: { ...dataset, users, items, interactions },
    split,
    splitRule: mode === 'hash' ? { kind: 'hash', userKey: (u) => u + 1, itemKey: (i) => i + 1 } : { kind: 'time' },
    ranking: {
      features: [
        ...cats.user,
        ...cats.item,
        ...cats.context,
        ...multis.user,
        ...multis.item,
        ...multis.context,
        ...numbers.user,
        ...numbers.item,
        ...countFeatures,
        ...numbers.context,
      ],
    },
    // The user tower embeds the request: the user's features and its context (recent items).
    userTower: { features: [...cats.user, ...multis.user, ...cats.context, ...multis.context, ...numbers.context] },
    itemTower: { features: [...cats.item, ...multis.item] },
  };
}
