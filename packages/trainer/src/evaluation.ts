import { auc, bestF1Threshold, classificationAt, logLoss, recallAtK, recallCurve, rocCurve } from './eval/metrics.js';
import type { RankingEvaluation, RetrievalEvaluation } from './eval/report.js';

export const RECALL_KS = [10, 50, 100] as const;

/** Ranking metrics on test; the F1 threshold is chosen on the train predictions (as the protocol says). */
export function rankingEvaluation(
  train: { labels: Float32Array; probs: Float32Array },
  test: { labels: Float32Array; probs: Float32Array },
): RankingEvaluation {
  const threshold = bestF1Threshold(train.labels, train.probs);
  const at = classificationAt(test.labels, test.probs, threshold);
  const roc = rocCurve(test.labels, test.probs);
  let positives = 0;
  for (const y of test.labels) positives += y;
  return {
    auc: auc(test.labels, test.probs),
    logloss: logLoss(test.labels, test.probs),
    f1: at.f1,
    precision: at.precision,
    recall: at.recall,
    threshold,
    roc: { fpr: roc.fpr, tpr: roc.tpr },
    testRows: test.labels.length,
    positives,
  };
}

export function retrievalEvaluation(ranked: Int32Array[], truth: Set<number>[], corpusSize: number): RetrievalEvaluation {
  const at = recallAtK(ranked, truth, [...RECALL_KS]);
  return {
    recall: Object.fromEntries(RECALL_KS.map((k) => [`recall@${k}`, at.get(k)!])),
    recallCurve: recallCurve(ranked, truth, 100),
    usersEvaluated: ranked.length,
    corpusSize,
  };
}
