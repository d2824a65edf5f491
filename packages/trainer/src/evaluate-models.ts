import { type FeatureSpec, type TrainingSetup, RECENT_ITEMS, encodeTable, userStateContext } from '@recsys/data';
import { auc, logLoss } from './eval/metrics.js';
import type { RankingEvaluation, RetrievalEvaluation } from './eval/report.js';
import { rankingEvaluation, retrievalEvaluation } from './evaluation.js';
import { toOnnxModel } from './graph/onnx.js';
import { OrtRunner } from './graph/ort-runner.js';
import { inputLayout } from './models/inputs.js';
import type { Dlrm } from './models/dlrm.js';
import type { Tower, TwoTower } from './models/two-tower.js';
import type { EpochValidation } from './train/loop.js';
import type { EncodedSources } from './models/inputs.js';
import { embedRows, rankByVectors, scorePreranking, scoreRanking } from './scoring.js';
import { type TowerVectors, prerankerLayout } from './train/preranking.js';
import { encodeSources, labelsOf, splitRows } from './train/ranking.js';

/** Every user's and item's tower vector, by the two exported tower graphs. */
export async function towerVectors(
  setup: TrainingSetup,
  user: OrtRunner,
  item: OrtRunner,
  userSpec: FeatureSpec,
  itemSpec: FeatureSpec,
): Promise<TowerVectors> {
  const { users, items } = setup.dataset;
  const history = userSpec.features.find((f) => f.source === 'context' && f.column === RECENT_ITEMS);
  const userSources = {
    user: encodeTable(users, userSpec.features, 'user'),
    // Users are embedded as of the end of the train data: their recent train items as context.
    context: encodeTable(userStateContext(setup, history?.kind === 'multi' ? history.maxValues : 0), userSpec.features, 'context'),
  };
  const userVectors = await embedRows(user, inputLayout(userSpec), userSources, 'user', users.ids.length);
  const itemVectors = await embedRows(item, inputLayout(itemSpec), encodeSources(setup, itemSpec), 'item', items.ids.length);
  return { dim: userVectors.length / users.ids.length, users: userVectors, items: itemVectors };
}

/** Recall@k of the two-tower on the test positives (train items excluded from the candidates). */
export async function evaluateRetrieval(setup: TrainingSetup, vectors: TowerVectors): Promise<RetrievalEvaluation> {
  const { ranked, truth, corpusSize } = await rankByVectors(setup, vectors, 100);
  return retrievalEvaluation(ranked, truth, corpusSize);
}

/**
 * The popularity baseline of every Recall@k curve: each user gets the items with the most train positives
 * (the user's train items excluded, as for the model), ranked by the same code as the two-tower's vectors.
 */
export async function popularityRetrieval(setup: TrainingSetup): Promise<RetrievalEvaluation> {
  const { users, items, interactions, positiveThreshold } = setup.dataset;
  const counts = new Float32Array(items.ids.length);
  for (let r = 0; r < interactions.length; r++)
    if (setup.split[r] === 1 && interactions.value[r]! >= positiveThreshold) counts[interactions.item[r]!]!++;
  return evaluateRetrieval(setup, { dim: 1, users: new Float32Array(users.ids.length).fill(1), items: counts });
}

/** Test metrics of per-row probabilities, with the F1 threshold chosen on the train rows' probabilities. */
async function rankingOnSplits(setup: TrainingSetup, probs: (rows: Int32Array) => Promise<Float32Array>): Promise<RankingEvaluation> {
  const score = async (rows: Int32Array) => ({ labels: labelsOf(setup, rows), probs: await probs(rows) });
  return rankingEvaluation(await score(splitRows(setup, true)), await score(splitRows(setup, false)));
}

/** Test metrics of a ranking graph (DLRM); `sources` may be passed when already encoded for `spec`. */
export function evaluateDlrm(
  setup: TrainingSetup,
  runner: OrtRunner,
  spec: FeatureSpec,
  sources = encodeSources(setup, spec),
): Promise<RankingEvaluation> {
  const layout = inputLayout(spec);
  return rankingOnSplits(setup, (rows) => scoreRanking(runner, layout, setup, sources, rows));
}

export function evaluatePreranker(
  setup: TrainingSetup,
  runner: OrtRunner,
  spec: FeatureSpec,
  vectors: TowerVectors,
  sources = encodeSources(setup, spec),
): Promise<RankingEvaluation> {
  const layout = prerankerLayout(spec);
  return rankingOnSplits(setup, (rows) => scorePreranking(runner, layout, setup, sources, vectors, rows));
}

/** Tower vectors of a two-tower held in memory, through in-memory onnxruntime sessions of its towers. */
export async function trainedTowerVectors(setup: TrainingSetup, model: TwoTower): Promise<TowerVectors> {
  const session = (t: Tower, name: string) =>
    OrtRunner.create(toOnnxModel({ name, outputs: { embedding: t.output }, params: 'initializer' }), { threads: 1 });
  const user = await session(model.user, 'user_tower');
  const item = await session(model.item, 'item_tower');
  try {
    return await towerVectors(setup, user, item, model.user.spec, model.item.spec);
  } finally {
    await user.release();
    await item.release();
  }
}

/** The score a two-tower's validation keeps the best epoch by: the mean of Recall@10, @50 and @100. */
export function retrievalScore(recall: Record<string, number>): number {
  return (recall['recall@10']! + recall['recall@50']! + recall['recall@100']!) / 3;
}

/**
 * Per-epoch validation of a two-tower on the setup's evaluation side (split 0: the validation slice
 * of a held-out setup), candidates excluding the fitted items; scored by retrievalScore.
 */
export function retrievalValidation(setup: TrainingSetup, patience?: number): (model: TwoTower) => EpochValidation {
  return (model) => ({
    patience,
    evaluate: async () => {
      const { recall } = await evaluateRetrieval(setup, await trainedTowerVectors(setup, model));
      return { score: retrievalScore(recall), metrics: recall };
    },
  });
}

/** Per-epoch validation of a DLRM on the setup's split-0 rows: AUC (kept by) and log loss. */
export function rankingValidation(setup: TrainingSetup, patience?: number): (model: Dlrm, sources: EncodedSources) => EpochValidation {
  const rows = splitRows(setup, false);
  const labels = labelsOf(setup, rows);
  return (model, sources) => ({
    patience,
    evaluate: async () => {
      const runner = await OrtRunner.create(
        toOnnxModel({ name: 'dlrm', outputs: { probability: model.probability }, params: 'initializer' }),
        { threads: 1 },
      );
      try {
        const probs = await scoreRanking(runner, model.layout, setup, sources, rows);
        const metrics = { auc: auc(labels, probs), logloss: logLoss(labels, probs) };
        return { score: metrics.auc, metrics };
      } finally {
        await runner.release();
      }
    },
  });
}
