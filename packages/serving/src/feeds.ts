import {
  type CategoricalFeature,
  type ContinuousFeature,
  type Feature,
  type FeatureSource,
  type FeatureSpec,
  type MultiCategoricalFeature,
  encodeCategorical,
  encodeContinuous,
  IdTableBuilder,
  isIdFeature,
} from '@recsys/data';
import { type InputDescription, type InputLayout, type Tensor, inputLayout } from '@recsys/model-format';
import type { FeatureRow, RawValue } from './feature-rows.js';
import { ItemColumns } from './item-rows-wire.js';

/**
 * The rows one batch reads: the user and request context are shared by every example, item k is
 * example k. A layout that reads no item features has a batch of one.
 */
export interface BatchRows extends SharedRows {
  items?: readonly FeatureRow[];
}

/** The rows every example of a batch shares. */
export interface SharedRows {
  user?: FeatureRow;
  context?: FeatureRow;
}

/**
 * One item's features encoded for one layout: its categorical codes, then for each multi-valued feature
 * the number of values and their codes (the first `codeWidth` values), then its normalised continuous values
 * (`valueWidth`). Read only: a cache hands the same one to concurrent requests.
 */
export type EncodedItem = Float64Array;

/**
 * The candidates' encoded items of one batch, compact: item k's codes (categorical codes, multi counts and codes) at
 * codes[k * codeWidth ...] and its continuous values, as the model reads them (float32), at values[k * valueWidth ...].
 * Filled from an item table's rows or from encoded items; `assemble` reads it.
 */
export class ItemBatch {
  readonly codes: Int32Array;
  readonly values: Float32Array;

  constructor(
    readonly count: number,
    readonly codeWidth: number,
    readonly valueWidth: number,
  ) {
    this.codes = new Int32Array(count * codeWidth);
    this.values = new Float32Array(count * valueWidth);
  }

  /** Item k from an encoded item. */
  setEncoded(k: number, item: EncodedItem): void {
    const cw = this.codeWidth;
    const vw = this.valueWidth;
    const codes = this.codes;
    const values = this.values;
    for (let j = 0; j < cw; j++) codes[k * cw + j] = item[j]!;
    for (let j = 0; j < vw; j++) values[k * vw + j] = item[cw + j]!;
  }

  /** Item k from a record of an item table: its codes at words[codesAt ...], its values at floats[valuesAt ...]. */
  setRecord(k: number, words: Int32Array, floats: Float32Array, codesAt: number, valuesAt: number): void {
    const cw = this.codeWidth;
    const vw = this.valueWidth;
    const codes = this.codes;
    const values = this.values;
    for (let j = 0; j < cw; j++) codes[k * cw + j] = words[codesAt + j]!;
    for (let j = 0; j < vw; j++) values[k * vw + j] = floats[valuesAt + j]!;
  }
}

const EMPTY: readonly string[] = [];

/** Stored values are typed loosely (a CSV number may be categorical): convert rather than drop. */
function asCategory(value: RawValue): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  return value[0] ?? '';
}

function asValues(value: RawValue): readonly string[] {
  if (value === undefined) return EMPTY;
  if (typeof value === 'string') return value === '' ? EMPTY : [value];
  if (typeof value === 'number') return Number.isFinite(value) ? [String(value)] : EMPTY;
  return value;
}

function asNumber(value: RawValue): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return NaN;
}

type ReadValue = (row: FeatureRow) => RawValue;
type EncodeCategory = (value: string) => number;

/** The raw value of a feature in a row: the entity id for an id feature, else its column (decided once per feature). */
function valueReader(feature: Feature): ReadValue {
  if (isIdFeature(feature)) return (row) => row.id;
  const column = feature.column;
  return (row) => row.get(column);
}

/**
 * From this many values a vocabulary is indexed in an IdTable (the values' bytes in one buffer, an Int32Array hash)
 * rather than a Map: a million recent-item ids as a Map are a million entries for every major GC to mark.
 */
export const LARGE_VOCABULARY = 65_536;

type EncodedFeature = CategoricalFeature | MultiCategoricalFeature;

/**
 * Encoders of the features servingLayout made compact, by feature: their vocabularies compiled into IdTables and the
 * value strings dropped, so a layout compiled again (another prefix) finds the encoder here.
 */
const compiledEncoders = new WeakMap<EncodedFeature, EncodeCategory>();

/** `encodeCategorical` with the vocabulary indexed once per feature rather than looked up per value. */
function categoryEncoder(feature: EncodedFeature): EncodeCategory {
  const compiled = compiledEncoders.get(feature);
  if (compiled !== undefined) return compiled;
  const { vocabulary, unknown } = feature;
  if (vocabulary === undefined) return bucketEncoder(feature);
  return vocabulary.length >= LARGE_VOCABULARY ? tableEncoder(vocabulary, unknown) : mapEncoder(vocabulary, unknown);
}

// One function per kind of encoder: a closure keeps its whole function's captured variables alive, so an encoder
// made next to one that reads `feature` kept the feature, and with it a million vocabulary strings.
function bucketEncoder(feature: EncodedFeature): EncodeCategory {
  return (value) => encodeCategorical(feature, value);
}

function tableEncoder(vocabulary: readonly string[], unknown: number): EncodeCategory {
  const builder = new IdTableBuilder();
  const position = new Int32Array(vocabulary.length);
  for (let k = 0; k < vocabulary.length; k++) {
    const row = builder.add(vocabulary[k]!);
    // The first position wins, should a value appear twice (as encodeCategorical has it).
    if (row === builder.size - 1) position[row] = k;
  }
  const table = builder.finish();
  return (value) => {
    if (value === '') return unknown;
    const row = table.rowOf(value);
    return row < 0 ? unknown : position[row]!;
  };
}

function mapEncoder(vocabulary: readonly string[], unknown: number): EncodeCategory {
  const index = new Map<string, number>();
  // The first position wins, should a value appear twice (as encodeCategorical has it).
  for (let k = vocabulary.length - 1; k >= 0; k--) index.set(vocabulary[k]!, k);
  return (value) => (value === '' ? unknown : (index.get(value) ?? unknown));
}

/**
 * The layout a served model assembles its feeds by: `inputLayout(spec)` with every vocabulary of LARGE_VOCABULARY
 * values or more compiled once into an IdTable and left out of the feature, which then holds no `vocabulary` (a
 * two-tower over a million items carried its recent-item vocabulary as a million strings, ~50 MiB and a million
 * objects for every major GC to mark, in every process that serves its user tower). Features with equal vocabularies
 * share one table. Assemble feeds with this layout only: its compact features encode through the compiled tables.
 */
export function servingLayout(spec: FeatureSpec): InputLayout {
  const layout = inputLayout(spec);
  // The tables made, with their vocabularies, for this call only: the encoders are made by functions outside it (see
  // bucketEncoder). A manifest read back from JSON holds a shared vocabulary once per feature (the recent items' and
  // the history's: equal arrays, not one), so equal vocabularies share a table too (a million ids: 34 MiB each).
  const tables: { vocabulary: readonly string[]; encode: EncodeCategory }[] = [];
  const compact = <F extends EncodedFeature>(feature: F): F => {
    const { vocabulary, ...rest } = feature;
    if (vocabulary === undefined || vocabulary.length < LARGE_VOCABULARY) return feature;
    let shared = tables.find((t) => sameValues(t.vocabulary, vocabulary))?.encode;
    if (shared === undefined) tables.push({ vocabulary, encode: (shared = tableEncoder(vocabulary, -1)) });
    const lean = rest as F;
    compiledEncoders.set(lean, withUnknown(shared, feature.unknown));
    return lean;
  };
  return { categorical: layout.categorical.map(compact), multi: layout.multi.map(compact), continuous: layout.continuous };
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** A shared table's encoder (-1 for a value it lacks) with a feature's own unknown index. */
function withUnknown(shared: EncodeCategory, unknown: number): EncodeCategory {
  return (value) => {
    const code = shared(value);
    return code < 0 ? unknown : code;
  };
}

interface CategoricalSlot {
  source: FeatureSource;
  read: ReadValue;
  encode: EncodeCategory;
  /** Column in the categorical input. */
  column: number;
}

interface MultiSlot {
  source: FeatureSource;
  read: ReadValue;
  encode: EncodeCategory;
  maxValues: number;
  codesName: string;
  weightsName: string;
  /** Where an encoded item holds its count and codes; -1 for a shared feature. */
  offset: number;
}

interface ContinuousSlot {
  feature: ContinuousFeature;
  source: FeatureSource;
  read: ReadValue;
  /** Column in the continuous input. */
  column: number;
}

function sharedRow(rows: SharedRows, source: FeatureSource): FeatureRow {
  const row = source === 'item' ? undefined : rows[source];
  if (!row) throw new Error(`assembleFeeds: a ${source} feature needs a ${source} row`);
  return row;
}

const assemblers = new WeakMap<InputLayout, Map<string, FeedAssembler>>();

/**
 * A layout compiled once: how each feature is read and encoded, which are shared by the batch and which
 * are per item. Items are encoded on their own (`encodeItem`, cacheable per model version), and a batch
 * is then assembled by copying their slices (`assemble`), exactly as the trainer's feature spec encodes.
 */
export class FeedAssembler {
  /** Whether the batch has one example per item (else one example). */
  readonly readsItems: boolean;
  /** The stored item columns the item features read (an item's id comes from the request). */
  readonly itemColumns: ItemColumns;
  /** Values in one encoded item: `codeWidth` codes, then `valueWidth` continuous values. */
  readonly itemWidth: number;
  readonly codeWidth: number;
  readonly valueWidth: number;
  private readonly categoricalName: string;
  private readonly categoricalWidth: number;
  private readonly sharedCategorical: CategoricalSlot[] = [];
  private readonly itemCategorical: CategoricalSlot[] = [];
  /** Column in the categorical input of item categorical feature j (slice position j). */
  private readonly itemCategoricalColumns: Int32Array;
  private readonly multi: MultiSlot[] = [];
  private readonly continuousName: string;
  private readonly continuousWidth: number;
  private readonly sharedContinuous: ContinuousSlot[] = [];
  private readonly itemContinuous: ContinuousSlot[] = [];
  /** Where an encoded item holds its continuous values. */
  private readonly continuousOffset: number;
  private readonly itemContinuousColumns: Int32Array;

  private constructor(layout: InputLayout, prefix: string) {
    const features = [...layout.categorical, ...layout.multi, ...layout.continuous];
    this.readsItems = features.some((f) => f.source === 'item');
    this.itemColumns = new ItemColumns([...new Set(features.filter((f) => f.source === 'item' && !isIdFeature(f)).map((f) => f.column))]);
    this.categoricalName = `${prefix}categorical`;
    this.categoricalWidth = layout.categorical.length;
    layout.categorical.forEach((f, column) => {
      const slot = { source: f.source, read: valueReader(f), encode: categoryEncoder(f), column };
      (f.source === 'item' ? this.itemCategorical : this.sharedCategorical).push(slot);
    });
    this.itemCategoricalColumns = Int32Array.from(this.itemCategorical, (s) => s.column);
    let offset = this.itemCategorical.length;
    for (const f of layout.multi) {
      const item = f.source === 'item';
      this.multi.push({
        source: f.source,
        read: valueReader(f),
        encode: categoryEncoder(f),
        maxValues: f.maxValues,
        codesName: `${prefix}multi_${f.name}`,
        weightsName: `${prefix}multi_${f.name}_weights`,
        offset: item ? offset : -1,
      });
      if (item) offset += 1 + f.maxValues;
    }
    this.continuousName = `${prefix}continuous`;
    this.continuousWidth = layout.continuous.length;
    layout.continuous.forEach((feature, column) => {
      const slot = { feature, source: feature.source, read: valueReader(feature), column };
      (feature.source === 'item' ? this.itemContinuous : this.sharedContinuous).push(slot);
    });
    this.itemContinuousColumns = Int32Array.from(this.itemContinuous, (s) => s.column);
    this.continuousOffset = offset;
    this.codeWidth = offset;
    this.valueWidth = this.itemContinuous.length;
    this.itemWidth = offset + this.itemContinuous.length;
  }

  /** The assembler of a layout (compiled on first use, then kept as long as the layout is). */
  static of(layout: InputLayout, prefix = ''): FeedAssembler {
    let byPrefix = assemblers.get(layout);
    if (byPrefix === undefined) assemblers.set(layout, (byPrefix = new Map()));
    let assembler = byPrefix.get(prefix);
    if (assembler === undefined) byPrefix.set(prefix, (assembler = new FeedAssembler(layout, prefix)));
    return assembler;
  }

  /** One item's features encoded (see EncodedItem). */
  encodeItem(row: FeatureRow): EncodedItem {
    const out = new Float64Array(this.itemWidth);
    const categorical = this.itemCategorical;
    for (let j = 0; j < categorical.length; j++) {
      const slot = categorical[j]!;
      out[j] = slot.encode(asCategory(slot.read(row)));
    }
    for (const slot of this.multi) {
      if (slot.offset < 0) continue;
      const values = asValues(slot.read(row));
      const count = values.length < slot.maxValues ? values.length : slot.maxValues;
      out[slot.offset] = count;
      for (let j = 0; j < count; j++) out[slot.offset + 1 + j] = slot.encode(values[j]!);
    }
    const continuous = this.itemContinuous;
    for (let j = 0; j < continuous.length; j++) {
      const slot = continuous[j]!;
      out[this.continuousOffset + j] = encodeContinuous(slot.feature, asNumber(slot.read(row)));
    }
    return out;
  }

  /** An empty batch of `count` items in this layout. */
  newBatch(count: number): ItemBatch {
    return new ItemBatch(count, this.codeWidth, this.valueWidth);
  }

  /** A batch of these encoded items. */
  batchOf(items: readonly EncodedItem[]): ItemBatch {
    const batch = this.newBatch(items.length);
    for (let k = 0; k < items.length; k++) batch.setEncoded(k, items[k]!);
    return batch;
  }

  /**
   * Model feeds for one batch: the shared rows encoded once and repeated, item k's codes and values copied
   * into example k. `items` are required when the layout reads item features (their count is the batch).
   */
  assemble(shared: SharedRows, items: ItemBatch | undefined): Record<string, Tensor> {
    const batch = this.readsItems ? (items?.count ?? 0) : 1;
    const cw = this.codeWidth;
    const vw = this.valueWidth;
    const feeds: Record<string, Tensor> = {};

    const C = this.categoricalWidth;
    if (C) {
      const data = new Int32Array(batch * C);
      for (const slot of this.sharedCategorical) {
        const code = slot.encode(asCategory(slot.read(sharedRow(shared, slot.source))));
        for (let k = 0; k < batch; k++) data[k * C + slot.column] = code;
      }
      const columns = this.itemCategoricalColumns;
      if (columns.length) {
        const codes = items!.codes;
        for (let k = 0; k < batch; k++) {
          const base = k * C;
          const at = k * cw;
          for (let j = 0; j < columns.length; j++) data[base + columns[j]!] = codes[at + j]!;
        }
      }
      feeds[this.categoricalName] = { data, shape: [batch, C] };
    }

    for (const slot of this.multi) {
      const L = slot.maxValues;
      const codes = new Int32Array(batch * L);
      const weights = new Float32Array(batch * L);
      if (slot.offset < 0) {
        const values = asValues(slot.read(sharedRow(shared, slot.source)));
        const count = values.length < L ? values.length : L;
        for (let j = 0; j < count; j++) {
          codes[j] = slot.encode(values[j]!);
          weights[j] = 1 / count;
        }
        for (let k = 1; k < batch; k++) {
          codes.copyWithin(k * L, 0, L);
          weights.copyWithin(k * L, 0, L);
        }
      } else {
        const item = items!.codes;
        for (let k = 0; k < batch; k++) {
          const at = k * cw + slot.offset;
          const count = item[at]!;
          const weight = 1 / count;
          const base = k * L;
          for (let j = 0; j < count; j++) {
            codes[base + j] = item[at + 1 + j]!;
            weights[base + j] = weight;
          }
        }
      }
      feeds[slot.codesName] = { data: codes, shape: [batch, L] };
      feeds[slot.weightsName] = { data: weights, shape: [batch, L] };
    }

    const D = this.continuousWidth;
    if (D) {
      const data = new Float32Array(batch * D);
      for (const slot of this.sharedContinuous) {
        const value = encodeContinuous(slot.feature, asNumber(slot.read(sharedRow(shared, slot.source))));
        for (let k = 0; k < batch; k++) data[k * D + slot.column] = value;
      }
      const columns = this.itemContinuousColumns;
      if (columns.length) {
        const values = items!.values;
        for (let k = 0; k < batch; k++) {
          const base = k * D;
          const at = k * vw;
          for (let j = 0; j < columns.length; j++) data[base + columns[j]!] = values[at + j]!;
        }
      }
      feeds[this.continuousName] = { data, shape: [batch, D] };
    }
    return feeds;
  }
}

/**
 * Model feeds for one batch, encoded exactly as the trainer's feature spec says (vocabulary or hash
 * buckets, unknown index, mean-pooled multi values, normalised continuous values with the training
 * missing value). Shared rows are encoded once and repeated.
 */
export function assembleFeeds(layout: InputLayout, rows: BatchRows, prefix = ''): Record<string, Tensor> {
  const assembler = FeedAssembler.of(layout, prefix);
  const items = assembler.readsItems && rows.items ? assembler.batchOf(rows.items.map((row) => assembler.encodeItem(row))) : undefined;
  return assembler.assemble(rows, items);
}

/** Feeds of the given batch size that any model accepts (code 0, zeros): warm-up runs use them. */
export function zeroFeeds(inputs: readonly InputDescription[], batch: number): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const input of inputs) {
    const shape = input.shape.map((d) => (typeof d === 'number' ? d : batch));
    const size = shape.reduce((a, b) => a * b, 1);
    feeds[input.name] = { data: input.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size), shape };
  }
  return feeds;
}

/** Concatenates several batches' feeds along the batch axis (dynamic batching); returns each part's offset. */
export function concatFeeds(parts: readonly Record<string, Tensor>[]): { feeds: Record<string, Tensor>; offsets: number[] } {
  if (parts.length === 1) return { feeds: parts[0]!, offsets: [0] };
  const offsets: number[] = [];
  let total = 0;
  const names = Object.keys(parts[0] ?? {});
  for (const part of parts) {
    offsets.push(total);
    total += part[names[0]!]?.shape[0] ?? 0;
  }
  const feeds: Record<string, Tensor> = {};
  for (const name of names) {
    const first = parts[0]![name]!;
    const rowSize = first.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = first.data instanceof Int32Array ? new Int32Array(total * rowSize) : new Float32Array(total * rowSize);
    parts.forEach((part, p) => {
      const t = part[name];
      if (!t) throw new Error(`concatFeeds: part ${p} has no input "${name}"`);
      data.set(t.data, offsets[p]! * rowSize);
    });
    feeds[name] = { data, shape: [total, ...first.shape.slice(1)] };
  }
  return { feeds, offsets };
}
