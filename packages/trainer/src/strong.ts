import type { UserHistoryOptions } from '@recsys/data';
import type { DataSource } from './data-source.js';
import { RANKING_DEFAULTS, type RankingTrainOptions } from './train/ranking.js';
import { RETRIEVAL_DEFAULTS, type RetrievalTrainOptions } from './train/retrieval.js';

/**
 * The strong settings (`recsys train --strong`, bench:train's strong track): user history in both
 * models, mixed negatives for the two-tower, DCN-v2 beside the dot interaction in DLRM. Chosen on the
 * validation slices of ML-100K and the synthetic data (`recsys tune`), never on a test split.
 */
export const STRONG_HISTORY: UserHistoryOptions = { tower: 100, ranking: 100, rankingItems: 'all' };

/**
 * Which fitted items DLRM's history holds for a data source: every rated item on ML-100K (PROTOCOL.md's
 * strong track), positives elsewhere: the feature service's history holds positive events only (recsys-up
 * loads the positive interactions), so serving could not feed the rest.
 */
export function strongRankingHistoryItems(source: DataSource): UserHistoryOptions['rankingItems'] {
  return source.kind === 'ml100k' ? 'all' : 'positive';
}

export const STRONG_RETRIEVAL: Omit<RetrievalTrainOptions, 'seed'> = {
  ...RETRIEVAL_DEFAULTS,
  epochs: 10,
  lr: 0.01,
  sampledNegatives: 512,
  twoTower: { temperature: 0.2 },
};

export const STRONG_RANKING: Omit<RankingTrainOptions, 'seed'> = {
  ...RANKING_DEFAULTS,
  epochs: 3,
  lr: 0.003,
  dlrm: { interaction: 'dotdcn' },
};
