import type { UserHistoryOptions } from '@recsys/data';
import type { DataSource, SetupPreparation } from './data-source.js';
import { RANKING_DEFAULTS, type RankingTrainOptions } from './train/ranking.js';
import { RETRIEVAL_DEFAULTS, type RetrievalTrainOptions } from './train/retrieval.js';

/**
 * The strong settings (`recsys train --strong`, bench:train's strong track): user history in both
 * models, mixed negatives for the two-tower, DCN-v2 beside the dot interaction in DLRM. Chosen on the
 * validation slices of ML-100K and the synthetic data (`recsys tune`), never on a test split.
 */
export const STRONG_HISTORY: UserHistoryOptions = { tower: 100, ranking: 100, rankingItems: 'all' };

/**
 * The strong history for a data source. ML-100K: STRONG_HISTORY (PROTOCOL.md's strong track: DLRM's
 * history holds every rated item). Elsewhere DLRM's history holds positives (the feature service's
 * history holds positive events only: recsys-up loads the positive interactions, so serving could not
 * feed the rest), and the user tower has none: on the synthetic data, which already gives the tower
 * `recent_items`, the fitted history lowered Recall@10/50/100 (0.324/0.624/0.763 against 0.375/0.671/0.804
 * without it, mixed negatives and temperature 0.2 alike, seed 0), while on ML-100K it lifts them.
 */
export function strongHistory(source: DataSource): UserHistoryOptions {
  return source.kind === 'ml100k' ? STRONG_HISTORY : { tower: 0, ranking: STRONG_HISTORY.ranking, rankingItems: 'positive' };
}

/** What a --strong run records in its manifests (data.preparation.preset): which data kind's defaults it took. */
export function strongPreset(source: DataSource): NonNullable<SetupPreparation['preset']> {
  return source.kind === 'ml100k' ? 'strong (ml100k)' : 'strong (synthetic and files data)';
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
