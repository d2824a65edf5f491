/**
 * The dataset model shared by the trainer (offline) and the serving stages (which
 * featurise requests with the same spec). Tables are columnar so that a million
 * items stay a few typed arrays rather than a million objects.
 */

/** A column of an entity table or of the interaction log; row order follows the table's ids. */
export type Column =
  /** One value per row; '' means missing. */
  | { kind: 'categorical'; values: string[] }
  /** Several values per row (tags, genres); an empty array means none. */
  | { kind: 'multi'; values: string[][] }
  /** One number per row; NaN means missing. */
  | { kind: 'numeric'; values: Float64Array };

export interface EntityTable {
  /** External ids in row order. */
  ids: string[];
  /** External id → row. */
  index: Map<string, number>;
  columns: Record<string, Column>;
}

/** The interaction log, columnar: row r is (users.ids[user[r]], items.ids[item[r]], value[r], timestamp[r]). */
export interface Interactions {
  length: number;
  user: Int32Array;
  item: Int32Array;
  /** A rating (MovieLens) or 1/0 for click/no click (synthetic, logs). */
  value: Float32Array;
  /** Seconds since the epoch. */
  timestamp: Float64Array;
  /** Optional per-interaction context columns (device, recently viewed items, …). */
  context: Record<string, Column>;
}

export interface Dataset {
  name: string;
  users: EntityTable;
  items: EntityTable;
  interactions: Interactions;
  /** value >= positiveThreshold is a positive (label 1). */
  positiveThreshold: number;
}

export type FeatureSource = 'user' | 'item' | 'context';

interface FeatureBase {
  /** Model input slot name, unique within a spec. */
  name: string;
  source: FeatureSource;
  /** Column of the source table holding the raw value. */
  column: string;
}

/**
 * A categorical feature: a vocabulary (value → its position) or hash buckets
 * (hashBucket(value, n)). Values not in the vocabulary, and missing values, map to `unknown`.
 */
export interface CategoricalFeature extends FeatureBase {
  kind: 'categorical';
  vocabulary?: string[];
  hashBuckets?: number;
  unknown: number;
}

/** A multi-valued categorical feature, pooled by mean; at most maxValues values are kept (the first ones). */
export interface MultiCategoricalFeature extends FeatureBase {
  kind: 'multi';
  vocabulary?: string[];
  hashBuckets?: number;
  unknown: number;
  maxValues: number;
}

/** A continuous feature: (transform(x) - mean) / std; a missing x uses `missing` in place of transform(x). */
export interface ContinuousFeature extends FeatureBase {
  kind: 'continuous';
  transform: 'identity' | 'log1p';
  mean: number;
  std: number;
  missing: number;
}

export type Feature = CategoricalFeature | MultiCategoricalFeature | ContinuousFeature;

/** The inputs of one model, in input order. */
export interface FeatureSpec {
  features: Feature[];
}

/** Everything a training run needs: data, its train/test split and the three models' input specs. */
export interface TrainingSetup {
  dataset: Dataset;
  /**
   * Per interaction: 1 = train (the rows the models are fitted on), 0 = test (evaluated on). A setup held
   * out for tuning (holdOutValidation) marks its validation slice 0 and the real test rows 2: never read.
   */
  split: Uint8Array;
  /**
   * Per interaction, 1 for the rows the features built from fitted data (the user histories, the train
   * counts) were built from, where they are not split's train rows: a run that held out a validation slice
   * fits on train minus that slice and is evaluated with the split restored, so its test-time histories
   * (the user tower's per user and DLRM's per row alike) come from these rows. Absent: split's train rows.
   */
  fittedRows?: Uint8Array;
  /** How the split was drawn: the hash keys of each row's user and item, or by time; the validation slice follows the same rule. */
  splitRule?: { kind: 'hash'; userKey: (user: number) => number; itemKey: (item: number) => number } | { kind: 'time' };
  /** DLRM and pre-ranking inputs (user, item and context features). */
  ranking: FeatureSpec;
  /** Two-tower user tower inputs (user and context features). */
  userTower: FeatureSpec;
  /** Two-tower item tower inputs (item features only). */
  itemTower: FeatureSpec;
}

/**
 * A spec's features encoded for every row of one table: categorical codes, multi-valued
 * codes (maxValues slots per row, padded, with per-row counts) and normalised continuous values.
 */
export interface EncodedTable {
  rows: number;
  categorical: Map<string, Int32Array>;
  multi: Map<string, { codes: Int32Array; counts: Int32Array; maxValues: number }>;
  continuous: Map<string, Float32Array>;
}
