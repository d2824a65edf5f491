import { AliasTable, type Column, type Interactions, Random, type TrainingSetup } from '@recsys/data';

/** How items are drawn as negatives for a user's positive: uniformly over the catalogue, or by train popularity. */
export type NegativeSampler = 'uniform' | 'popularity';
export const NEGATIVE_SAMPLERS: readonly NegativeSampler[] = ['uniform', 'popularity'];

/**
 * Sampled negatives for ranking training on implicit feedback (data whose interactions are all positive).
 * `ratio` negatives are drawn per positive row; 0 turns sampling off (such a run is then refused: one class).
 */
export interface NegativeSampling {
  ratio: number;
  sampler: NegativeSampler;
  /** Defaults to the run's seed. */
  seed?: number;
}

export const NEGATIVE_SAMPLING_DEFAULTS: Omit<NegativeSampling, 'seed'> = { ratio: 4, sampler: 'uniform' };

/** What a run did about negatives, recorded in the manifest and the report. */
export interface NegativesRecord {
  /** 'logged': the data holds its own negatives; 'sampled': drawn here; 'none': all positive and sampling off. */
  source: 'logged' | 'sampled' | 'none';
  sampler?: NegativeSampler;
  ratio?: number;
  /** Sampled rows added (train and test). */
  sampled?: number;
}

/** True when every interaction of the data is a positive (no label 0 at all): implicit feedback. */
export function allPositive(setup: TrainingSetup): boolean {
  const { value, length } = setup.dataset.interactions;
  const t = setup.dataset.positiveThreshold;
  for (let r = 0; r < length; r++) if (!(value[r]! >= t)) return false;
  return length > 0;
}

/** Label counts over a split side (1 = train, 0 = test). */
export function labelCounts(setup: TrainingSetup, side: number): { rows: number; positives: number } {
  const { value } = setup.dataset.interactions;
  const t = setup.dataset.positiveThreshold;
  let rows = 0;
  let positives = 0;
  for (let r = 0; r < setup.split.length; r++) {
    if (setup.split[r] !== side) continue;
    rows++;
    if (value[r]! >= t) positives++;
  }
  return { rows, positives };
}

function gatherColumn(column: Column, parent: Int32Array): Column {
  switch (column.kind) {
    case 'numeric':
      return { kind: 'numeric', values: Float64Array.from(parent, (r) => column.values[r]!) };
    case 'categorical':
      return { kind: 'categorical', values: Array.from(parent, (r) => column.values[r]!) };
    case 'multi':
      return { kind: 'multi', values: Array.from(parent, (r) => column.values[r]!) };
  }
}

/**
 * The setup with `ratio` sampled negatives (label 0) after every positive row: same user, same time, same
 * context (recent items), a split side equal to its positive's — so training fits positives against sampled
 * negatives and the test side evaluates held-out positives against negatives drawn the same way. Items the user
 * has any positive with are never drawn. Popularity weights are train positives per item, plus one.
 * `parent[r]` is the original row each row came from. Entity tables and feature specs are unchanged.
 */
export function withSampledNegatives(
  setup: TrainingSetup,
  options: NegativeSampling,
): { setup: TrainingSetup; sampled: number; parent: Int32Array } {
  const { ratio, sampler } = options;
  if (!Number.isInteger(ratio) || ratio < 1) throw new Error(`negative sampling: ratio must be a whole number >= 1, got ${ratio}`);
  if (!NEGATIVE_SAMPLERS.includes(sampler))
    throw new Error(`negative sampling: sampler must be one of ${NEGATIVE_SAMPLERS.join(', ')}, got "${String(sampler)}"`);
  const { interactions, items, positiveThreshold } = setup.dataset;
  const nItems = items.ids.length;
  const positivesOf = new Map<number, Set<number>>();
  const weights = new Float64Array(nItems).fill(1);
  for (let r = 0; r < interactions.length; r++) {
    if (!(interactions.value[r]! >= positiveThreshold)) continue;
    const u = interactions.user[r]!;
    (positivesOf.get(u) ?? positivesOf.set(u, new Set()).get(u)!).add(interactions.item[r]!);
    if (setup.split[r] === 1) weights[interactions.item[r]!]!++;
  }
  const random = new Random(options.seed ?? 0);
  const table = sampler === 'popularity' ? new AliasTable(weights) : undefined;
  const draw = () => (table ? table.sample(random) : random.int(nItems));
  const negativeValue = Math.min(0, positiveThreshold - 1);

  const parent: number[] = [];
  const item: number[] = [];
  const value: number[] = [];
  for (let r = 0; r < interactions.length; r++) {
    parent.push(r);
    item.push(interactions.item[r]!);
    value.push(interactions.value[r]!);
    if (!(interactions.value[r]! >= positiveThreshold)) continue;
    const taken = positivesOf.get(interactions.user[r]!)!;
    if (taken.size >= nItems) continue;
    for (let k = 0; k < ratio; k++) {
      let i = draw();
      // Rejection: a user's own positives are not negatives; bounded, as a heavy user may hold most popular items.
      for (let tries = 0; taken.has(i) && tries < 64; tries++) i = draw();
      if (taken.has(i)) continue;
      parent.push(r);
      item.push(i);
      value.push(negativeValue);
    }
  }
  const rows = Int32Array.from(parent);
  const context: Record<string, Column> = {};
  for (const [name, column] of Object.entries(interactions.context)) context[name] = gatherColumn(column, rows);
  const out: Interactions = {
    length: rows.length,
    user: Int32Array.from(rows, (r) => interactions.user[r]!),
    item: Int32Array.from(item),
    value: Float32Array.from(value),
    timestamp: Float64Array.from(rows, (r) => interactions.timestamp[r]!),
    context,
  };
  return {
    setup: { ...setup, dataset: { ...setup.dataset, interactions: out }, split: Uint8Array.from(rows, (r) => setup.split[r]!) },
    sampled: rows.length - interactions.length,
    parent: rows,
  };
}

/** A setup over the same original rows (the fitted one of a run with a validation slice) on the sampled rows. */
export function onSampledRows(original: TrainingSetup, sampled: TrainingSetup, parent: Int32Array): TrainingSetup {
  return { ...original, dataset: sampled.dataset, split: Uint8Array.from(parent, (r) => original.split[r]!) };
}
