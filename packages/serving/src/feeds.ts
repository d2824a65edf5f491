import {
  type ContinuousFeature,
  type Feature,
  type FeatureSource,
  type MultiCategoricalFeature,
  encodeCategorical,
  encodeContinuous,
  encodeMulti,
  isIdFeature,
} from '@recsys/data';
import type { InputDescription, InputLayout, Tensor } from '@recsys/trainer';
import type { FeatureRow, RawValue } from './feature-rows.js';

/**
 * The rows one batch reads: the user and request context are shared by every example, item k is
 * example k. A layout that reads no item features has a batch of one.
 */
export interface BatchRows {
  user?: FeatureRow;
  context?: FeatureRow;
  items?: readonly FeatureRow[];
}

const EMPTY: readonly string[] = [];

function rowFor(rows: BatchRows, source: FeatureSource, k: number): FeatureRow {
  const row = source === 'item' ? rows.items?.[k] : rows[source];
  if (!row) throw new Error(`assembleFeeds: a ${source} feature needs a ${source} row`);
  return row;
}

function raw(feature: Feature, row: FeatureRow): RawValue {
  return isIdFeature(feature) ? row.id : row.get(feature.column);
}

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

function isShared(source: FeatureSource): boolean {
  return source !== 'item';
}

/**
 * Model feeds for one batch, encoded exactly as the trainer's feature spec says (vocabulary or hash
 * buckets, unknown index, mean-pooled multi values, normalised continuous values with the training
 * missing value). Shared rows are encoded once and repeated.
 */
export function assembleFeeds(layout: InputLayout, rows: BatchRows, prefix = ''): Record<string, Tensor> {
  const readsItems = [...layout.categorical, ...layout.multi, ...layout.continuous].some((f) => f.source === 'item');
  const batch = readsItems ? (rows.items?.length ?? 0) : 1;
  const feeds: Record<string, Tensor> = {};

  if (layout.categorical.length) {
    const C = layout.categorical.length;
    const data = new Int32Array(batch * C);
    layout.categorical.forEach((f, c) => {
      if (isShared(f.source)) {
        const code = encodeCategorical(f, asCategory(raw(f, rowFor(rows, f.source, 0))));
        for (let k = 0; k < batch; k++) data[k * C + c] = code;
      } else {
        for (let k = 0; k < batch; k++) data[k * C + c] = encodeCategorical(f, asCategory(raw(f, rowFor(rows, f.source, k))));
      }
    });
    feeds[`${prefix}categorical`] = { data, shape: [batch, C] };
  }

  for (const f of layout.multi) {
    const L = f.maxValues;
    const codes = new Int32Array(batch * L);
    const weights = new Float32Array(batch * L);
    const fill = (k: number, row: FeatureRow) => encodeMultiRow(f, raw(f, row), codes, weights, k * L);
    if (isShared(f.source)) {
      fill(0, rowFor(rows, f.source, 0));
      for (let k = 1; k < batch; k++) {
        codes.copyWithin(k * L, 0, L);
        weights.copyWithin(k * L, 0, L);
      }
    } else {
      for (let k = 0; k < batch; k++) fill(k, rowFor(rows, f.source, k));
    }
    feeds[`${prefix}multi_${f.name}`] = { data: codes, shape: [batch, L] };
    feeds[`${prefix}multi_${f.name}_weights`] = { data: weights, shape: [batch, L] };
  }

  if (layout.continuous.length) {
    const D = layout.continuous.length;
    const data = new Float32Array(batch * D);
    layout.continuous.forEach((f: ContinuousFeature, d) => {
      if (isShared(f.source)) {
        const value = encodeContinuous(f, asNumber(raw(f, rowFor(rows, f.source, 0))));
        for (let k = 0; k < batch; k++) data[k * D + d] = value;
      } else {
        for (let k = 0; k < batch; k++) data[k * D + d] = encodeContinuous(f, asNumber(raw(f, rowFor(rows, f.source, k))));
      }
    });
    feeds[`${prefix}continuous`] = { data, shape: [batch, D] };
  }
  return feeds;
}

function encodeMultiRow(f: MultiCategoricalFeature, value: RawValue, codes: Int32Array, weights: Float32Array, offset: number): void {
  const n = encodeMulti(f, asValues(value), codes, offset);
  for (let j = 0; j < n; j++) weights[offset + j] = 1 / n;
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
