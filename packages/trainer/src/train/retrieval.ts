import { type TrainingSetup, Random } from '@recsys/data';
import { type EncodedSources, batchFeeds } from '../models/inputs.js';
import { TWO_TOWER_DEFAULTS, TwoTower, type TwoTowerConfig } from '../models/two-tower.js';
import { FrequencyEstimator } from './frequency-estimator.js';
import { type LoopResult, type TrainOptions, fromTrainOptions, trainLoop } from './loop.js';
import { encodeSources } from './ranking.js';

export interface RetrievalTrainOptions extends TrainOptions {
  /** Subtract log p(item) from the in-batch logits (Yi et al. 2019); off for comparison. */
  correction: boolean;
  estimator?: { size: number; alpha: number };
  twoTower?: Partial<TwoTowerConfig>;
}

export const RETRIEVAL_DEFAULTS: Omit<RetrievalTrainOptions, 'seed'> = {
  epochs: 10,
  batchSize: 512,
  lr: 3e-3,
  correction: true,
  estimator: { size: 1 << 16, alpha: 0.01 },
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

export async function trainTwoTower(setup: TrainingSetup, options: RetrievalTrainOptions): Promise<TrainedRetrieval> {
  const rng = new Random(options.seed);
  const model = new TwoTower(setup.userTower, setup.itemTower, { ...TWO_TOWER_DEFAULTS, ...options.twoTower }, rng);
  const userSources = encodeSources(setup, setup.userTower);
  const itemSources = encodeSources(setup, setup.itemTower);
  const rows = positiveTrainRows(setup);
  const { user, item } = setup.dataset.interactions;
  const est = options.estimator ?? RETRIEVAL_DEFAULTS.estimator!;
  const estimator = new FrequencyEstimator(est.size, est.alpha);
  const targetsCache = new Map<number, Float32Array>();
  const loop = await trainLoop({
    ...fromTrainOptions(options),
    model: options.correction ? 'two-tower' : 'two-tower (no correction)',
    count: rows.length,
    rng,
    loss: model.loss(),
    params: model.params,
    feeds: (batch, step) => {
      const b = batch.length;
      const users = Int32Array.from(batch, (k) => user[rows[k]!]!);
      const items = Int32Array.from(batch, (k) => item[rows[k]!]!);
      const logp = estimator.update(items, step);
      if (!options.correction) logp.fill(0);
      const mask = new Float32Array(b * b);
      for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) if (i !== j && items[i] === items[j]) mask[i * b + j] = -1e9;
      let targets = targetsCache.get(b);
      if (!targets) {
        targets = new Float32Array(b * b);
        for (let i = 0; i < b; i++) targets[i * b + i] = 1;
        targetsCache.set(b, targets);
      }
      return {
        ...batchFeeds(model.user.layout, userSources, { user: users, context: Int32Array.from(batch, (k) => rows[k]!) }, b, 'user_'),
        ...batchFeeds(model.item.layout, itemSources, { item: items }, b, 'item_'),
        logq: { data: logp, shape: [b] },
        mask: { data: mask, shape: [b, b] },
        targets: { data: targets, shape: [b, b] },
        inv_batch: { data: Float32Array.of(1 / b), shape: [] },
      };
    },
  });
  return { model, userSources, itemSources, loop, correction: options.correction };
}
