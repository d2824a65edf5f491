import type { UserHistoryOptions } from '@recsys/data';
import type { DataSource, SetupPreparation } from './data-source.js';
import { RANKING_DEFAULTS, type RankingTrainOptions } from './train/ranking.js';
import { RETRIEVAL_DEFAULTS, type RetrievalTrainOptions } from './train/retrieval.js';

/**
 * The strong settings (`recsys train --strong`, bench:train's strong track): user history in both
 * models, ML-100K's item side features, mixed negatives for the two-tower, DCN-v2 beside the dot
 * interaction in DLRM. Every option was compared on validation slices only (ML-100K's PROTOCOL.md slice
 * and the synthetic data's latest 10% of train; `pnpm bench:strong-choices`), never on a test split; the
 * figures are in test/bench/results/strong-choices.md. A default moved only where an alternative beat it
 * on validation by more than the seed-to-seed and epoch-to-epoch noise (0.003 of the two-tower's mean
 * Recall, 0.002 of DLRM's AUC).
 */
export const STRONG_HISTORY: UserHistoryOptions = { tower: 100, ranking: 100, rankingItems: 'all' };

/**
 * The two-tower's strong settings on ML-100K: PROTOCOL.md's strong reference settings except the batch size,
 * 128 rather than 512 (validation score 0.5123 ± 0.0066 against 0.5071 ± 0.0018 over seeds 0-2, best at
 * epoch 10; seeds 3-4 0.5139 against 0.5073; on the synthetic data 0.6294 against 0.5950).
 */
export const STRONG_RETRIEVAL: Omit<RetrievalTrainOptions, 'seed'> = {
  ...RETRIEVAL_DEFAULTS,
  epochs: 10,
  batchSize: 128,
  lr: 0.01,
  sampledNegatives: 512,
  twoTower: { temperature: 0.2 },
};

/** DLRM's strong settings on ML-100K (2 epochs validated 0.0012 AUC higher than 3: within noise, so 3 stays). */
export const STRONG_RANKING: Omit<RankingTrainOptions, 'seed'> = {
  ...RANKING_DEFAULTS,
  epochs: 3,
  lr: 0.003,
  dlrm: { interaction: 'dotdcn' },
};

export interface StrongSettings {
  history: UserHistoryOptions;
  retrieval: Omit<RetrievalTrainOptions, 'seed'>;
  ranking: Omit<RankingTrainOptions, 'seed'>;
  /** What the manifests record (data.preparation.preset). */
  preset: NonNullable<SetupPreparation['preset']>;
}

/**
 * The strong settings for a data source. They differ by data kind only where validation said so:
 * - ML-100K: STRONG_HISTORY (DLRM's history over every fitted item, as PROTOCOL.md's strong track fixes
 *   it; a positives-only history validated higher, 0.7938 against 0.7904, but the protocol does not allow
 *   it), STRONG_RETRIEVAL, STRONG_RANKING.
 * - Synthetic and files data: no history in the user tower (it already reads `recent_items`; the fitted
 *   history lowered the validation score 0.5977 → 0.5578), DLRM's history over fitted positives (what the
 *   feature service's history holds: recsys-up loads the positive events, so serving could not feed the
 *   rest; on validation AUC 0.8417 with it, 0.8345 without), and fewer epochs: the two-tower at batch
 *   size 128 peaked at epoch 3 (3-seed mean 0.6294, against 0.6122 at 8; at batch 512 epoch 8, 0.5950) and
 *   DLRM at epoch 2 (AUC 0.8417 against 0.8319 at 3).
 */
export function strongSettings(source: DataSource): StrongSettings {
  if (source.kind === 'ml100k')
    return { history: STRONG_HISTORY, retrieval: STRONG_RETRIEVAL, ranking: STRONG_RANKING, preset: 'strong (ml100k)' };
  return {
    history: { tower: 0, ranking: STRONG_HISTORY.ranking, rankingItems: 'positive' },
    retrieval: { ...STRONG_RETRIEVAL, epochs: 3 },
    ranking: { ...STRONG_RANKING, epochs: 2 },
    preset: 'strong (synthetic and files data)',
  };
}
