import type { UserHistoryOptions } from '@recsys/data';
import { type DataSource, prepareSetup } from './data-source.js';
import { rankingValidation, retrievalValidation } from './evaluate-models.js';
import type { ProgressListener } from './train/loop.js';
import { RANKING_DEFAULTS, type RankingTrainOptions, trainDlrm } from './train/ranking.js';
import { RETRIEVAL_DEFAULTS, type RetrievalTrainOptions, trainTwoTower } from './train/retrieval.js';

/** The grid `recsys tune` searches: every epoch up to the maximum is a candidate (validated after each). */
export interface TuneGrid {
  temperatures: number[];
  retrievalLrs: number[];
  retrievalEpochs: number;
  rankingLrs: number[];
  rankingEpochs: number;
}

export const TUNE_GRID: TuneGrid = {
  temperatures: [0.05, 0.1, 0.2],
  retrievalLrs: [0.003, 0.01],
  retrievalEpochs: 12,
  rankingLrs: [0.001, 0.003],
  rankingEpochs: 4,
};

export interface TunePoint {
  settings: Record<string, number>;
  score: number;
  metrics: Record<string, number>;
}

export interface TuneChoice {
  /** The chosen settings (temperature, lr, epochs). */
  chosen: Record<string, number>;
  /** Its validation score: mean Recall@10/50/100 for the two-tower, AUC for DLRM. */
  score: number;
  metric: string;
  /** Every grid point, in the order tried. */
  grid: TunePoint[];
  validation: 'validation slice of train (PROTOCOL.md rule; the latest train rows for a time split)';
}

export interface TuneOptions {
  seed: number;
  threads?: number;
  history?: UserHistoryOptions;
  grid?: Partial<TuneGrid>;
  retrieval?: Partial<Omit<RetrievalTrainOptions, 'seed'>>;
  ranking?: Partial<Omit<RankingTrainOptions, 'seed'>>;
  /** Which models to tune. */
  models?: { twoTower?: boolean; dlrm?: boolean };
  onProgress?: ProgressListener;
  log?: (line: string) => void;
}

function checkGrid(grid: TuneGrid): void {
  const positive = (name: string, values: number[]) => {
    if (values.length === 0 || values.some((v) => !(v > 0) || !Number.isFinite(v)))
      throw new Error(`tune: ${name} must be a non-empty list of positive numbers, got [${values.join(', ')}]`);
  };
  positive('temperatures', grid.temperatures);
  positive('retrievalLrs', grid.retrievalLrs);
  positive('rankingLrs', grid.rankingLrs);
  for (const [name, n] of [
    ['retrievalEpochs', grid.retrievalEpochs],
    ['rankingEpochs', grid.rankingEpochs],
  ] as const)
    if (!Number.isInteger(n) || n < 1) throw new Error(`tune: ${name} must be a whole number >= 1, got ${n}`);
}

/**
 * A small grid search on the validation slice of train: the two-tower over temperature × learning rate,
 * DLRM over learning rate, each trained to the grid's most epochs and validated after every epoch, so
 * the epoch count is searched too. The test split is never read (its rows are marked 2 in the fitted setup).
 */
export async function tune(source: DataSource, options: TuneOptions): Promise<{ twoTower?: TuneChoice; dlrm?: TuneChoice }> {
  const grid = { ...TUNE_GRID, ...options.grid };
  checkGrid(grid);
  const log = options.log ?? (() => undefined);
  const { fit } = prepareSetup(source, { history: options.history, validation: true });
  const common = { seed: options.seed, threads: options.threads ?? 1, onProgress: options.onProgress };
  const result: { twoTower?: TuneChoice; dlrm?: TuneChoice } = {};
  const best = (points: TunePoint[]) => points.reduce((a, b) => (b.score > a.score ? b : a));
  const which = options.models ?? { twoTower: true, dlrm: true };
  if (which.twoTower) {
    const points: TunePoint[] = [];
    for (const temperature of grid.temperatures)
      for (const lr of grid.retrievalLrs) {
        const base = { ...RETRIEVAL_DEFAULTS, ...options.retrieval };
        const trained = await trainTwoTower(
          fit,
          { ...base, ...common, lr, epochs: grid.retrievalEpochs, twoTower: { ...base.twoTower, temperature } },
          retrievalValidation(fit),
        );
        for (const v of trained.loop.validation ?? [])
          points.push({ settings: { temperature, lr, epochs: v.epoch }, score: v.score, metrics: v.metrics });
        const top = best(points.filter((p) => p.settings.temperature === temperature && p.settings.lr === lr));
        log(
          `tune two-tower: temperature ${temperature}, lr ${lr}: best epoch ${top.settings.epochs}, validation score ${top.score.toFixed(4)}`,
        );
      }
    const chosen = best(points);
    result.twoTower = {
      chosen: chosen.settings,
      score: chosen.score,
      metric: 'mean of validation Recall@10, @50, @100',
      grid: points,
      validation: 'validation slice of train (PROTOCOL.md rule; the latest train rows for a time split)',
    };
  }
  if (which.dlrm) {
    const points: TunePoint[] = [];
    for (const lr of grid.rankingLrs) {
      const trained = await trainDlrm(
        fit,
        { ...RANKING_DEFAULTS, ...options.ranking, ...common, lr, epochs: grid.rankingEpochs },
        rankingValidation(fit),
      );
      for (const v of trained.loop.validation ?? []) points.push({ settings: { lr, epochs: v.epoch }, score: v.score, metrics: v.metrics });
      const top = best(points.filter((p) => p.settings.lr === lr));
      log(`tune dlrm: lr ${lr}: best epoch ${top.settings.epochs}, validation auc ${top.score.toFixed(4)}`);
    }
    const chosen = best(points);
    result.dlrm = {
      chosen: chosen.settings,
      score: chosen.score,
      metric: 'validation AUC',
      grid: points,
      validation: 'validation slice of train (PROTOCOL.md rule; the latest train rows for a time split)',
    };
  }
  return result;
}
