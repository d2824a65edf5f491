import { type TrainingSetup, Random } from '@recsys/data';
import type { Tensor } from '../graph/evaluate.js';
import { type EncodedSources, type InputLayout, batchFeeds, prerankerLayout } from '@recsys/model-format';

export { prerankerLayout } from '@recsys/model-format';
import { PRERANKER_DEFAULTS, Preranker, type PrerankerConfig } from '../models/preranker.js';
import { type LoopResult, type TrainOptions, fromTrainOptions, labelFeeds, trainLoop } from './loop.js';
import { encodeSources, labelsOf, splitRows } from './ranking.js';

export interface PrerankingTrainOptions extends TrainOptions {
  preranker?: Partial<PrerankerConfig>;
}

export const PRERANKING_DEFAULTS: Omit<PrerankingTrainOptions, 'seed'> = { epochs: 3, batchSize: 256, lr: 1e-3 };

/** The tower vectors the pre-ranker reads: every user's and item's, from the trained two-tower. */
export interface TowerVectors {
  dim: number;
  users: Float32Array;
  items: Float32Array;
}

export interface TrainedPreranking {
  model: Preranker;
  layout: InputLayout | undefined;
  sources: EncodedSources;
  loop: LoopResult;
}

function gatherRows(table: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let k = 0; k < rows.length; k++) out.set(table.subarray(rows[k]! * dim, (rows[k]! + 1) * dim), k * dim);
  return out;
}

/** Feeds of the pre-ranker for interaction rows: both tower vectors and the ranking spec's continuous features. */
export function prerankingFeeds(
  continuous: InputLayout | undefined,
  setup: TrainingSetup,
  sources: EncodedSources,
  vectors: TowerVectors,
  rows: Int32Array,
): Record<string, Tensor> {
  const { user, item } = setup.dataset.interactions;
  const users = Int32Array.from(rows, (r) => user[r]!);
  const items = Int32Array.from(rows, (r) => item[r]!);
  const b = rows.length;
  const feeds: Record<string, Tensor> = {
    user_embedding: { data: gatherRows(vectors.users, vectors.dim, users), shape: [b, vectors.dim] },
    item_embedding: { data: gatherRows(vectors.items, vectors.dim, items), shape: [b, vectors.dim] },
  };
  if (continuous) Object.assign(feeds, batchFeeds(continuous, sources, { user: users, item: items, context: rows }, b));
  return feeds;
}

export async function trainPreranker(
  setup: TrainingSetup,
  vectors: TowerVectors,
  options: PrerankingTrainOptions,
): Promise<TrainedPreranking> {
  const rng = new Random(options.seed);
  const layout = prerankerLayout(setup.ranking);
  const model = new Preranker(vectors.dim, layout?.continuous.length ?? 0, { ...PRERANKER_DEFAULTS, ...options.preranker }, rng);
  const sources = encodeSources(setup);
  const rows = splitRows(setup, true);
  const labels = labelsOf(setup, rows);
  const loop = await trainLoop({
    ...fromTrainOptions(options),
    model: 'preranker',
    count: rows.length,
    rng,
    loss: model.loss(),
    params: model.params,
    feeds: (batch) => ({
      ...prerankingFeeds(
        layout,
        setup,
        sources,
        vectors,
        Int32Array.from(batch, (k) => rows[k]!),
      ),
      ...labelFeeds(labels, batch),
    }),
  });
  return { model, layout, sources, loop };
}
