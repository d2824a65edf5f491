import { type TrainingSetup, Random } from '@recsys/data';
import type { Tensor } from '../graph/evaluate.js';
import { type EncodedSources, batchFeeds } from '../models/inputs.js';
import { TWO_TOWER_DEFAULTS, TwoTower, type TwoTowerConfig } from '../models/two-tower.js';
import { FrequencyEstimator } from './frequency-estimator.js';
import { type EpochValidation, type LoopResult, type TrainOptions, fromTrainOptions, trainLoop } from './loop.js';
import { encodeSources } from './ranking.js';

export interface RetrievalTrainOptions extends TrainOptions {
  /** Subtract log p(item) from the in-batch logits (Yi et al. 2019); off for comparison. */
  correction: boolean;
  estimator?: { size: number; alpha: number };
  /**
   * Mixed negative sampling (Yang et al. 2020): this many items drawn uniformly from the corpus per batch
   * join the in-batch negatives, corrected by log(sampled / corpus); 0 trains on in-batch negatives only.
   */
  sampledNegatives?: number;
  twoTower?: Partial<TwoTowerConfig>;
}

export const RETRIEVAL_DEFAULTS: Omit<RetrievalTrainOptions, 'seed'> = {
  epochs: 10,
  batchSize: 512,
  lr: 3e-3,
  correction: true,
  estimator: { size: 1 << 16, alpha: 0.01 },
  sampledNegatives: 0,
};

export interface TrainedRetrieval {
  model: TwoTower;
  userSources: EncodedSources;
  itemSources: EncodedSources;
  loop: LoopResult;
  correction: boolean;
}

/** Train rows that are positives: the two-tower's training pairs. */
export function positiveTrainRows(setup: TrainingSetup): Int32Array {
  const { value } = setup.dataset.interactions;
  const rows: number[] = [];
  for (let r = 0; r < setup.split.length; r++) if (setup.split[r] === 1 && value[r]! >= setup.dataset.positiveThreshold) rows.push(r);
  return Int32Array.from(rows);
}

/**
 * The loss feeds of a batch whose item rows are its b examples' items then any sampled negatives:
 * targets [b, n] (each example's own column), mask [b, n] (-1e9 on accidental hits: an item row that is
 * the example's positive, other than its own column, in-batch or sampled), logq [n], inv_batch.
 */
export function softmaxFeeds(items: Int32Array, b: number, logq: Float32Array): Record<string, Tensor> {
  const n = items.length;
  const mask = new Float32Array(b * n);
  const targets = new Float32Array(b * n);
  for (let i = 0; i < b; i++) {
    const own = items[i]!;
    const row = i * n;
    targets[row + i] = 1;
    for (let j = 0; j < n; j++) if (j !== i && items[j] === own) mask[row + j] = -1e9;
  }
  return {
    logq: { data: logq, shape: [n] },
    mask: { data: mask, shape: [b, n] },
    targets: { data: targets, shape: [b, n] },
    inv_batch: { data: Float32Array.of(1 / b), shape: [] },
  };
}

/** Per-epoch validation of a two-tower being trained (the model's params as they stand). */
export type RetrievalValidation = (model: TwoTower) => EpochValidation;

export async function trainTwoTower(
  setup: TrainingSetup,
  options: RetrievalTrainOptions,
  validation?: RetrievalValidation,
): Promise<TrainedRetrieval> {
  const sampled = options.sampledNegatives ?? 0;
  if (!Number.isInteger(sampled) || sampled < 0) throw new Error(`two-tower: sampledNegatives must be a whole number >= 0, got ${sampled}`);
  const rng = new Random(options.seed);
  const model = new TwoTower(setup.userTower, setup.itemTower, { ...TWO_TOWER_DEFAULTS, ...options.twoTower }, rng);
  const userSources = encodeSources(setup, setup.userTower);
  const itemSources = encodeSources(setup, setup.itemTower);
  const rows = positiveTrainRows(setup);
  const { user, item } = setup.dataset.interactions;
  const corpus = setup.dataset.items.ids.length;
  const est = options.estimator ?? RETRIEVAL_DEFAULTS.estimator!;
  const estimator = new FrequencyEstimator(est.size, est.alpha);
  // A uniform draw of `sampled` items has expected count sampled / corpus for each item.
  const sampledLogQ = options.correction && sampled > 0 ? Math.log(sampled / corpus) : 0;
  // Separate streams, so the batches do not depend on the number of sampled negatives.
  const negatives = new Random(options.seed + 0x5eed);
  const loop = await trainLoop({
    ...fromTrainOptions(options),
    model: options.correction ? 'two-tower' : 'two-tower (no correction)',
    count: rows.length,
    rng,
    loss: model.loss(),
    params: model.params,
    validation: validation?.(model),
    feeds: (batch, step) => {
      const b = batch.length;
      const n = b + sampled;
      const users = Int32Array.from(batch, (k) => user[rows[k]!]!);
      const items = new Int32Array(n);
      for (let k = 0; k < b; k++) items[k] = item[rows[batch[k]!]!]!;
      for (let k = b; k < n; k++) items[k] = Math.floor(negatives.next() * corpus);
      const logq = new Float32Array(n);
      estimator.update(items.subarray(0, b), step, logq.subarray(0, b));
      if (!options.correction) logq.fill(0);
      else logq.fill(sampledLogQ, b);
      return {
        ...batchFeeds(model.user.layout, userSources, { user: users, context: Int32Array.from(batch, (k) => rows[k]!) }, b, 'user_'),
        ...batchFeeds(model.item.layout, itemSources, { item: items }, n, 'item_'),
        ...softmaxFeeds(items, b, logq),
      };
    },
  });
  return { model, userSources, itemSources, loop, correction: options.correction };
}
