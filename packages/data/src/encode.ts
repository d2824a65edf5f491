import { hashBucket } from './hash.js';
import {
  type CategoricalFeature,
  type Column,
  type ContinuousFeature,
  type EncodedTable,
  type Feature,
  type FeatureSource,
  type MultiCategoricalFeature,
} from './types.js';

// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { log1p } = Math;
const { isFinite: finite } = Number;

/** What encodeTable reads: an EntityTable, or interaction context columns with their length. */
export interface EncodableTable {
  ids?: readonly string[];
  length?: number;
  columns: Record<string, Column>;
}

// Keyed by the vocabulary array, so features sharing one vocabulary share one Map and a replaced vocabulary is re-indexed.
const vocabularyIndexes = new WeakMap<readonly string[], Map<string, number>>();

function vocabularyIndex(vocabulary: readonly string[]): Map<string, number> {
  let index = vocabularyIndexes.get(vocabulary);
  if (index === undefined) {
    index = new Map();
    // The first position wins, should a value appear twice.
    for (let k = vocabulary.length - 1; k >= 0; k--) index.set(vocabulary[k]!, k);
    vocabularyIndexes.set(vocabulary, index);
  }
  return index;
}

/** The embedding table size of a feature: vocabulary length or hash buckets; 0 for continuous features. */
export function cardinality(feature: Feature): number {
  if (feature.kind === 'continuous') return 0;
  if (feature.vocabulary !== undefined) return feature.vocabulary.length;
  if (feature.hashBuckets !== undefined) return feature.hashBuckets;
  throw new Error(`feature "${feature.name}": needs a vocabulary or hashBuckets`);
}

/** Throws when a feature cannot encode: no vocabulary nor buckets, unknown out of range, bad std or maxValues. */
export function checkFeature(feature: Feature): void {
  const where = `feature "${feature.name}" (column "${feature.column}")`;
  if (feature.kind === 'continuous') {
    if (!(feature.std > 0) || !Number.isFinite(feature.std)) throw new Error(`${where}: std must be a positive number, got ${feature.std}`);
    if (!Number.isFinite(feature.mean) || !Number.isFinite(feature.missing)) throw new Error(`${where}: mean and missing must be finite`);
    return;
  }
  if (feature.hashBuckets !== undefined && !(Number.isInteger(feature.hashBuckets) && feature.hashBuckets > 0)) {
    throw new Error(`${where}: hashBuckets must be a positive integer, got ${feature.hashBuckets}`);
  }
  const size = cardinality(feature);
  if (!Number.isInteger(feature.unknown) || feature.unknown < 0 || feature.unknown >= size) {
    throw new Error(`${where}: unknown ${feature.unknown} is outside 0..${size - 1}`);
  }
  if (feature.kind === 'multi' && !(Number.isInteger(feature.maxValues) && feature.maxValues > 0)) {
    throw new Error(`${where}: maxValues must be a positive integer, got ${feature.maxValues}`);
  }
}

/** One categorical value → its code; missing ('') and unknown values → feature.unknown. */
export function encodeCategorical(feature: CategoricalFeature | MultiCategoricalFeature, value: string): number {
  if (value === '') return feature.unknown;
  if (feature.vocabulary !== undefined) return vocabularyIndex(feature.vocabulary).get(value) ?? feature.unknown;
  if (feature.hashBuckets !== undefined) return hashBucket(value, feature.hashBuckets);
  throw new Error(`feature "${feature.name}": needs a vocabulary or hashBuckets`);
}

/** Writes the codes of the first maxValues values at out[offset…]; returns how many it wrote. */
export function encodeMulti(feature: MultiCategoricalFeature, values: readonly string[], out: Int32Array, offset = 0): number {
  const count = values.length < feature.maxValues ? values.length : feature.maxValues;
  for (let k = 0; k < count; k++) out[offset + k] = encodeCategorical(feature, values[k]!);
  return count;
}

/** (transform(x) - mean) / std; a missing (NaN or infinite) x uses feature.missing in place of transform(x). */
export function encodeContinuous(feature: ContinuousFeature, value: number): number {
  const x = finite(value) ? (feature.transform === 'log1p' ? log1p(value) : value) : feature.missing;
  return (x - feature.mean) / feature.std;
}

/** The column name that stands for a user or item table's own ids, unless the table has a real column of that name. */
export const ID_COLUMNS: Readonly<Record<'user' | 'item', string>> = { user: 'user_id', item: 'item_id' };

/** Whether a feature reads the entity id (user_id of a user, item_id of an item) rather than a stored column. */
export function isIdFeature(feature: Feature): boolean {
  return feature.source !== 'context' && feature.column === ID_COLUMNS[feature.source];
}

/** A table's column by name; for user/item sources the id column name resolves to the ids when no such column is stored. */
export function resolveColumn(table: EncodableTable, source: FeatureSource, name: string): Column | undefined {
  const column = table.columns[name];
  if (column !== undefined || source === 'context' || name !== ID_COLUMNS[source] || table.ids === undefined) return column;
  return { kind: 'categorical', values: table.ids as string[] };
}

function columnOf(table: EncodableTable, feature: Feature, kind: Column['kind'], rows: number): Column {
  const column = resolveColumn(table, feature.source, feature.column);
  if (column === undefined) {
    const have = Object.keys(table.columns).join(', ') || 'none';
    throw new Error(`feature "${feature.name}": column "${feature.column}" is missing from the ${feature.source} table (columns: ${have})`);
  }
  if (column.kind !== kind) {
    throw new Error(
      `feature "${feature.name}": column "${feature.column}" is ${column.kind}, a ${feature.kind} feature needs a ${kind} column`,
    );
  }
  if (column.values.length !== rows) {
    throw new Error(`feature "${feature.name}": column "${feature.column}" has ${column.values.length} values for ${rows} rows`);
  }
  return column;
}

/**
 * Encodes `features` for every row of one table. Pass the features of that table's source,
 * or pass a whole spec with `source` to keep only that source's features.
 */
export function encodeTable(table: EncodableTable, features: readonly Feature[], source?: FeatureSource): EncodedTable {
  const rows = table.length ?? table.ids?.length;
  if (rows === undefined) throw new Error('encodeTable: the table has neither ids nor a length');
  const out: EncodedTable = { rows, categorical: new Map(), multi: new Map(), continuous: new Map() };
  for (const feature of features) {
    if (source !== undefined && feature.source !== source) continue;
    checkFeature(feature);
    if (out.categorical.has(feature.name) || out.multi.has(feature.name) || out.continuous.has(feature.name)) {
      throw new Error(`feature "${feature.name}": the name is used twice`);
    }
    if (feature.kind === 'categorical') {
      const values = columnOf(table, feature, 'categorical', rows).values as string[];
      const codes = new Int32Array(rows);
      for (let r = 0; r < rows; r++) codes[r] = encodeCategorical(feature, values[r]!);
      out.categorical.set(feature.name, codes);
    } else if (feature.kind === 'multi') {
      const values = columnOf(table, feature, 'multi', rows).values as string[][];
      const codes = new Int32Array(rows * feature.maxValues);
      const counts = new Int32Array(rows);
      for (let r = 0; r < rows; r++) counts[r] = encodeMulti(feature, values[r]!, codes, r * feature.maxValues);
      out.multi.set(feature.name, { codes, counts, maxValues: feature.maxValues });
    } else {
      const values = columnOf(table, feature, 'numeric', rows).values as Float64Array;
      const encoded = new Float32Array(rows);
      for (let r = 0; r < rows; r++) encoded[r] = encodeContinuous(feature, values[r]!);
      out.continuous.set(feature.name, encoded);
    }
  }
  return out;
}
