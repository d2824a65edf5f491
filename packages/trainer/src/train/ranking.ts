import { type EncodedTable, type TrainingSetup, Random, encodeTable } from '@recsys/data';
import type { Tensor } from '../graph/evaluate.js';
import { DLRM_DEFAULTS, Dlrm, type DlrmConfig } from '../models/dlrm.js';
import { type EncodedSources, type InputLayout, batchFeeds } from '../models/inputs.js';
import { type EpochValidation, type LoopResult, type TrainOptions, fromTrainOptions, labelFeeds, trainLoop } from './loop.js';

export interface RankingTrainOptions extends TrainOptions {
  dlrm?: Partial<DlrmConfig>;
}

export const RANKING_DEFAULTS: Omit<RankingTrainOptions, 'seed'> = { epochs: 3, batchSize: 256, lr: 1e-3 };

/** The setup's tables encoded once for a spec's features (user, item and interaction context). */
export function encodeSources(setup: TrainingSetup, spec = setup.ranking): EncodedSources {
  const { dataset } = setup;
  const context: EncodedTable = encodeTable(
    { length: dataset.interactions.length, columns: dataset.interactions.context },
    spec.features,
    'context',
  );
  return {
    user: encodeTable(dataset.users, spec.features, 'user'),
    item: encodeTable(dataset.items, spec.features, 'item'),
    context,
  };
}

/** Interaction rows of one side of the split. */
export function splitRows(setup: TrainingSetup, train: boolean): Int32Array {
  const rows: number[] = [];
  const want = train ? 1 : 0;
  for (let r = 0; r < setup.split.length; r++) if (setup.split[r] === want) rows.push(r);
  return Int32Array.from(rows);
}

export function labelsOf(setup: TrainingSetup, rows: Int32Array): Float32Array {
  const { value } = setup.dataset.interactions;
  const t = setup.dataset.positiveThreshold;
  return Float32Array.from(rows, (r) => (value[r]! >= t ? 1 : 0));
}

/** Feeds of the ranking inputs for interaction rows. */
export function rankingFeeds(layout: InputLayout, setup: TrainingSetup, sources: EncodedSources, rows: Int32Array): Record<string, Tensor> {
  const { user, item } = setup.dataset.interactions;
  return batchFeeds(
    layout,
    sources,
    { user: Int32Array.from(rows, (r) => user[r]!), item: Int32Array.from(rows, (r) => item[r]!), context: rows },
    rows.length,
  );
}

export interface TrainedRanking {
  model: Dlrm;
  sources: EncodedSources;
  loop: LoopResult;
}

/** Per-epoch validation of a DLRM being trained (its params as they stand), over the encoded sources. */
export type RankingValidation = (model: Dlrm, sources: EncodedSources) => EpochValidation;

export async function trainDlrm(
  setup: TrainingSetup,
  options: RankingTrainOptions,
  validation?: RankingValidation,
): Promise<TrainedRanking> {
  const rng = new Random(options.seed);
  const model = new Dlrm(setup.ranking, { ...DLRM_DEFAULTS, ...options.dlrm }, rng);
  const sources = encodeSources(setup);
  const rows = splitRows(setup, true);
  const labels = labelsOf(setup, rows);
  const loop = await trainLoop({
    ...fromTrainOptions(options),
    model: 'dlrm',
    count: rows.length,
    rng,
    loss: model.loss().loss,
    params: model.params,
    validation: validation?.(model, sources),
    feeds: (batch) => ({
      ...rankingFeeds(
        model.layout,
        setup,
        sources,
        Int32Array.from(batch, (k) => rows[k]!),
      ),
      ...labelFeeds(labels, batch),
    }),
  });
  return { model, sources, loop };
}
