import {
  type CategoricalFeature,
  type ContinuousFeature,
  type EncodedTable,
  type FeatureSource,
  type FeatureSpec,
  type MultiCategoricalFeature,
} from '@recsys/data';

/** A dense tensor as onnxruntime takes it: the trainer's feeds and the servers' feeds have this shape. */
export interface Tensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

/**
 * How a spec's features become model inputs: categorical features are the columns of one int32
 * `categorical` [B, C] input, continuous ones the columns of a float32 `continuous` [B, D] input,
 * and each multi-valued feature has `multi_<name>` [B, L] codes with `multi_<name>_weights` [B, L]
 * (1/count on the filled slots, 0 on padding: mean pooling).
 */
export interface InputLayout {
  categorical: CategoricalFeature[];
  multi: MultiCategoricalFeature[];
  continuous: ContinuousFeature[];
}

export interface InputDescription {
  name: string;
  dtype: 'int32' | 'float32';
  shape: (number | string)[];
  features: string[];
}

export function inputLayout(spec: FeatureSpec): InputLayout {
  return {
    categorical: spec.features.filter((f): f is CategoricalFeature => f.kind === 'categorical'),
    multi: spec.features.filter((f): f is MultiCategoricalFeature => f.kind === 'multi'),
    continuous: spec.features.filter((f): f is ContinuousFeature => f.kind === 'continuous'),
  };
}

/** The ONNX inputs a layout needs, in order, with the features each carries. */
/** `batch` names the rows' symbolic dim (the item tower's rows differ from the users' in training). */
export function describeInputs(layout: InputLayout, prefix = '', batch: string = 'B'): InputDescription[] {
  const out: InputDescription[] = [];
  if (layout.categorical.length)
    out.push({
      name: `${prefix}categorical`,
      dtype: 'int32',
      shape: [batch, layout.categorical.length],
      features: layout.categorical.map((f) => f.name),
    });
  for (const f of layout.multi) {
    out.push({ name: `${prefix}multi_${f.name}`, dtype: 'int32', shape: [batch, f.maxValues], features: [f.name] });
    out.push({ name: `${prefix}multi_${f.name}_weights`, dtype: 'float32', shape: [batch, f.maxValues], features: [f.name] });
  }
  if (layout.continuous.length)
    out.push({
      name: `${prefix}continuous`,
      dtype: 'float32',
      shape: [batch, layout.continuous.length],
      features: layout.continuous.map((f) => f.name),
    });
  return out;
}

/** Encoded tables a layout reads, per source. */
export type EncodedSources = Partial<Record<FeatureSource, EncodedTable>>;

/**
 * Feeds for a batch: example k reads row users[k] of the user table, items[k] of the item table
 * and contexts[k] of the context table (each array only needed when the layout reads that source).
 */
export function batchFeeds(
  layout: InputLayout,
  sources: EncodedSources,
  rows: Partial<Record<FeatureSource, ArrayLike<number>>>,
  batch: number,
  prefix = '',
): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  const rowsOf = (source: FeatureSource) => {
    const r = rows[source];
    if (!r) throw new Error(`batchFeeds: no ${source} rows for a ${source} feature`);
    return r;
  };
  const table = (source: FeatureSource) => {
    const t = sources[source];
    if (!t) throw new Error(`batchFeeds: no encoded ${source} table`);
    return t;
  };
  if (layout.categorical.length) {
    const C = layout.categorical.length;
    const data = new Int32Array(batch * C);
    layout.categorical.forEach((f, c) => {
      const codes = table(f.source).categorical.get(f.name)!;
      const r = rowsOf(f.source);
      for (let k = 0; k < batch; k++) data[k * C + c] = codes[r[k]!]!;
    });
    feeds[`${prefix}categorical`] = { data, shape: [batch, C] };
  }
  for (const f of layout.multi) {
    const { codes, counts, maxValues } = table(f.source).multi.get(f.name)!;
    const r = rowsOf(f.source);
    const data = new Int32Array(batch * maxValues);
    const weights = new Float32Array(batch * maxValues);
    for (let k = 0; k < batch; k++) {
      const row = r[k]!;
      const n = counts[row]!;
      data.set(codes.subarray(row * maxValues, (row + 1) * maxValues), k * maxValues);
      for (let j = 0; j < n; j++) weights[k * maxValues + j] = 1 / n;
    }
    feeds[`${prefix}multi_${f.name}`] = { data, shape: [batch, maxValues] };
    feeds[`${prefix}multi_${f.name}_weights`] = { data: weights, shape: [batch, maxValues] };
  }
  if (layout.continuous.length) {
    const D = layout.continuous.length;
    const data = new Float32Array(batch * D);
    layout.continuous.forEach((f, d) => {
      const values = table(f.source).continuous.get(f.name)!;
      const r = rowsOf(f.source);
      for (let k = 0; k < batch; k++) data[k * D + d] = values[r[k]!]!;
    });
    feeds[`${prefix}continuous`] = { data, shape: [batch, D] };
  }
  return feeds;
}

/** The pre-ranker's continuous inputs: the ranking spec's continuous features (undefined when it has none). */
export function prerankerLayout(spec: FeatureSpec): InputLayout | undefined {
  const continuous = inputLayout(spec).continuous;
  return continuous.length ? { categorical: [], multi: [], continuous } : undefined;
}
