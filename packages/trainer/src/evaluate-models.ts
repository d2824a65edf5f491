import { type FeatureSpec, type TrainingSetup, RECENT_ITEMS, encodeTable, userStateContext } from '@recsys/data';
import type { RankingEvaluation, RetrievalEvaluation } from './eval/report.js';
import { rankingEvaluation, retrievalEvaluation } from './evaluation.js';
import type { OrtRunner } from './graph/ort-runner.js';
import { inputLayout } from './models/inputs.js';
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

/** Test metrics of a ranking graph, with the F1 threshold chosen on its train predictions. */
export async function evaluateDlrm(setup: TrainingSetup, runner: OrtRunner, spec: FeatureSpec): Promise<RankingEvaluation> {
  const layout = inputLayout(spec);
  const sources = encodeSources(setup, spec);
  const score = async (rows: Int32Array) => ({
    labels: labelsOf(setup, rows),
    probs: await scoreRanking(runner, layout, setup, sources, rows),
  });
  return rankingEvaluation(await score(splitRows(setup, true)), await score(splitRows(setup, false)));
}

export async function evaluatePreranker(
  setup: TrainingSetup,
  runner: OrtRunner,
  spec: FeatureSpec,
  vectors: TowerVectors,
): Promise<RankingEvaluation> {
  const layout = prerankerLayout(spec);
  const sources = encodeSources(setup, spec);
  const score = async (rows: Int32Array) => ({
    labels: labelsOf(setup, rows),
    probs: await scorePreranking(runner, layout, setup, sources, vectors, rows),
  });
  return rankingEvaluation(await score(splitRows(setup, true)), await score(splitRows(setup, false)));
}
