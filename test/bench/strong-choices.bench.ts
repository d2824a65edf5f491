// How the strong settings (`recsys train --strong`, bench:train's strong track) are chosen: each option
// trained on train minus the validation slice (PROTOCOL.md's rule on ML-100K, the latest 10% of train on
// the synthetic data) and scored on that slice after every epoch. The test split is never read: the
// fitted setup marks its rows 2 and every figure here is a validation figure.
// CHOICES_DATA=ml100k|synthetic (default ml100k), CHOICES=name,name (default: every variant of that data),
// CHOICES_SEEDS=0,1 (default 0; with several seeds each figure is mean ± sd over them). Last line: one JSON object; the current strong default is the baseline.
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TrainingSetup, UserHistoryOptions } from '@recsys/data';
import { repoRoot } from '@recsys/testing';
import {
  DEFAULT_SYNTHETIC,
  type DataSource,
  type RankingTrainOptions,
  RETRIEVAL_DEFAULTS,
  type RetrievalTrainOptions,
  type TwoTowerConfig,
  type ValidationPoint,
  loadSetup,
  prepareSetup,
  rankingValidation,
  retrievalValidation,
  strongSettings,
  trainDlrm,
  trainTwoTower,
} from '@recsys/trainer';
import { round } from './stats';

const DATA = (process.env.CHOICES_DATA ?? 'ml100k') as 'ml100k' | 'synthetic';
const ML100K = resolve(repoRoot, process.env.ML100K_DIR ?? '../shared/datasets/ml-100k');
const SEEDS = (process.env.CHOICES_SEEDS ?? '0').split(',').map(Number);
// Every epoch up to these is validated (the strong defaults train 10 and 3).
const TT_EPOCHS = Number(process.env.CHOICES_TT_EPOCHS ?? 12);
const DLRM_EPOCHS = Number(process.env.CHOICES_DLRM_EPOCHS ?? 4);
// CHOICES_OUT=file.json: every variant's per-seed, per-epoch validation points (score and metrics).
const OUT = process.env.CHOICES_OUT;

interface Variant {
  name: string;
  model: 'two-tower' | 'dlrm';
  /** ML-100K's item side features (every genre, exact release year). */
  itemSide?: boolean;
  history?: Partial<UserHistoryOptions>;
  retrieval?: Partial<Omit<RetrievalTrainOptions, 'seed'>>;
  ranking?: Partial<Omit<RankingTrainOptions, 'seed'>>;
}

const source = (itemSide: boolean): DataSource =>
  DATA === 'ml100k'
    ? { kind: 'ml100k', dir: ML100K, ...(itemSide ? { itemSide: true } : {}) }
    : { kind: 'synthetic', options: DEFAULT_SYNTHETIC };
const DEFAULTS = strongSettings(source(true));
const DEFAULT_HISTORY = DEFAULTS.history;
const temperature = (t: number) => ({ twoTower: { ...DEFAULTS.retrieval.twoTower, temperature: t } });

const twoTower = (config: Partial<TwoTowerConfig>) => ({ twoTower: { ...DEFAULTS.retrieval.twoTower, ...config } });
const estimator = (alpha: number) => ({ estimator: { ...(DEFAULTS.retrieval.estimator ?? RETRIEVAL_DEFAULTS.estimator!), alpha } });

// The remaining existing two-tower hyperparameters, on both data sets: the batch size (the number of
// in-batch negatives and of steps per epoch), alone and with the sampled negatives scaled with it; the
// logQ estimator's moving-average rate; lazy (row-sparse) Adam on the embedding tables; the tower sizes
// TwoTowerConfig already has (the strong reference's 16 / [64] / 32).
const TUNING_VARIANTS: Variant[] = [
  { name: 'tt-batch-128', model: 'two-tower', retrieval: { batchSize: 128 } },
  { name: 'tt-batch-256', model: 'two-tower', retrieval: { batchSize: 256 } },
  { name: 'tt-batch-1024', model: 'two-tower', retrieval: { batchSize: 1024 } },
  { name: 'tt-batch-2048', model: 'two-tower', retrieval: { batchSize: 2048 } },
  { name: 'tt-batch-256-negatives-256', model: 'two-tower', retrieval: { batchSize: 256, sampledNegatives: 256 } },
  { name: 'tt-batch-1024-negatives-1024', model: 'two-tower', retrieval: { batchSize: 1024, sampledNegatives: 1024 } },
  { name: 'tt-batch-1024-lr-0.02', model: 'two-tower', retrieval: { batchSize: 1024, lr: 0.02 } },
  { name: 'tt-estimator-alpha-0.001', model: 'two-tower', retrieval: estimator(0.001) },
  { name: 'tt-estimator-alpha-0.005', model: 'two-tower', retrieval: estimator(0.005) },
  { name: 'tt-estimator-alpha-0.02', model: 'two-tower', retrieval: estimator(0.02) },
  { name: 'tt-estimator-alpha-0.05', model: 'two-tower', retrieval: estimator(0.05) },
  { name: 'tt-lazy-adam', model: 'two-tower', retrieval: { lazyEmbeddings: true } },
  { name: 'tt-embedding-32', model: 'two-tower', retrieval: twoTower({ embeddingDim: 32 }) },
  { name: 'tt-hidden-128', model: 'two-tower', retrieval: twoTower({ hidden: [128] }) },
  { name: 'tt-output-64', model: 'two-tower', retrieval: twoTower({ outputDim: 64 }) },
];

const ML100K_VARIANTS: Variant[] = [
  { name: 'tt-default', model: 'two-tower' },
  { name: 'tt-history-0', model: 'two-tower', history: { tower: 0 } },
  { name: 'tt-history-50', model: 'two-tower', history: { tower: 50 } },
  { name: 'tt-history-200', model: 'two-tower', history: { tower: 200 } },
  { name: 'tt-no-item-side', model: 'two-tower', itemSide: false },
  { name: 'tt-negatives-256', model: 'two-tower', retrieval: { sampledNegatives: 256 } },
  { name: 'tt-negatives-1024', model: 'two-tower', retrieval: { sampledNegatives: 1024 } },
  { name: 'tt-negatives-2048', model: 'two-tower', retrieval: { sampledNegatives: 2048 } },
  { name: 'tt-temperature-0.15', model: 'two-tower', retrieval: temperature(0.15) },
  { name: 'tt-temperature-0.25', model: 'two-tower', retrieval: temperature(0.25) },
  { name: 'tt-temperature-0.3', model: 'two-tower', retrieval: temperature(0.3) },
  { name: 'tt-lr-0.005', model: 'two-tower', retrieval: { lr: 0.005 } },
  { name: 'tt-lr-0.02', model: 'two-tower', retrieval: { lr: 0.02 } },
  ...TUNING_VARIANTS,
  { name: 'dlrm-default', model: 'dlrm' },
  { name: 'dlrm-history-0', model: 'dlrm', history: { ranking: 0 } },
  { name: 'dlrm-history-50', model: 'dlrm', history: { ranking: 50 } },
  { name: 'dlrm-history-200', model: 'dlrm', history: { ranking: 200 } },
  { name: 'dlrm-history-positive', model: 'dlrm', history: { rankingItems: 'positive' } },
];

const SYNTHETIC_VARIANTS: Variant[] = [
  { name: 'tt-default', model: 'two-tower' },
  { name: 'tt-history-50', model: 'two-tower', history: { tower: 50 } },
  { name: 'tt-history-100', model: 'two-tower', history: { tower: 100 } },
  { name: 'tt-negatives-0', model: 'two-tower', retrieval: { sampledNegatives: 0 } },
  { name: 'tt-negatives-1024', model: 'two-tower', retrieval: { sampledNegatives: 1024 } },
  { name: 'tt-lr-0.02', model: 'two-tower', retrieval: { lr: 0.02 } },
  ...TUNING_VARIANTS,
  { name: 'dlrm-default', model: 'dlrm' },
  { name: 'dlrm-history-0', model: 'dlrm', history: { ranking: 0 } },
  { name: 'dlrm-history-50', model: 'dlrm', history: { ranking: 50 } },
  { name: 'dlrm-history-200', model: 'dlrm', history: { ranking: 200 } },
];

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n - 1). */
const sd = (xs: readonly number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

async function run(v: Variant, base: TrainingSetup, seed: number): Promise<ValidationPoint[]> {
  const history = { ...DEFAULT_HISTORY, ...v.history };
  // Only the rows fitted build the history and the counts; the validation slice is the "test" side.
  const { fit } = prepareSetup(base, { history, validation: true });
  if (v.model === 'two-tower') {
    const options = { ...DEFAULTS.retrieval, ...v.retrieval, epochs: TT_EPOCHS, seed, threads: 1 };
    return (await trainTwoTower(fit, options, retrievalValidation(fit))).loop.validation!;
  }
  const options = { ...DEFAULTS.ranking, ...v.ranking, epochs: DLRM_EPOCHS, seed, threads: 1 };
  return (await trainDlrm(fit, options, rankingValidation(fit))).loop.validation!;
}

async function main(): Promise<void> {
  if (DATA === 'ml100k' && !existsSync(resolve(ML100K, 'u.data'))) {
    console.log(JSON.stringify({ skipped: true, reason: `no ML-100K at ${ML100K}` }));
    return;
  }
  const all = DATA === 'ml100k' ? ML100K_VARIANTS : SYNTHETIC_VARIANTS;
  const wanted = process.env.CHOICES?.split(',');
  const variants = wanted ? all.filter((v) => wanted.includes(v.name)) : all;
  if (wanted && variants.length !== wanted.length)
    throw new Error(`CHOICES: unknown variant in ${wanted.join(', ')}; known: ${all.map((v) => v.name).join(', ')}`);
  const setups = new Map<boolean, TrainingSetup>();
  const setupOf = (itemSide: boolean) => {
    if (!setups.has(itemSide)) setups.set(itemSide, loadSetup(source(itemSide)));
    return setups.get(itemSide)!;
  };
  console.log(`strong choices on ${DATA}, seeds ${SEEDS.join(',')}, history default ${JSON.stringify(DEFAULT_HISTORY)}`);
  const figures: Record<string, number> = {};
  const points: Record<string, ValidationPoint[][]> = {};
  for (const v of variants) {
    const perSeed: ValidationPoint[][] = [];
    for (const seed of SEEDS) {
      const points = await run(v, setupOf(v.itemSide ?? true), seed);
      perSeed.push(points);
      const line = points.map((p) => `${p.epoch}:${round(p.score, 4)}`).join(' ');
      console.log(`${DATA} ${v.name} seed ${seed} per epoch ${line}`);
    }
    // Per epoch, the mean over seeds; the variant's figure is its best epoch's (the loop keeps that epoch),
    // with the sample standard deviation over seeds at that epoch (the seed-to-seed noise).
    points[v.name] = perSeed;
    if (OUT) writeFileSync(OUT, JSON.stringify({ data: DATA, seeds: SEEDS, points }));
    const epochs = Math.min(...perSeed.map((p) => p.length));
    const at = (e: number, key?: string) => perSeed.map((p) => (key ? p[e]!.metrics[key]! : p[e]!.score));
    let best = { epoch: 0, score: -Infinity };
    const meanLine: string[] = [];
    for (let e = 0; e < epochs; e++) {
      const score = mean(at(e));
      meanLine.push(`${e + 1}:${round(score, 4)}`);
      if (score > best.score) best = { epoch: e + 1, score };
    }
    console.log(`${DATA} ${v.name} mean per epoch ${meanLine.join(' ')}`);
    const e = best.epoch - 1;
    const keys = ['score', ...Object.keys(perSeed[0]![e]!.metrics)];
    const shown = keys
      .map((k) => {
        const xs = at(e, k === 'score' ? undefined : k);
        figures[`${v.name}_${k}`] = round(mean(xs), 4);
        if (SEEDS.length > 1) figures[`${v.name}_${k}_sd`] = round(sd(xs), 4);
        return `${k} ${round(mean(xs), 4)}${SEEDS.length > 1 ? ` ± ${round(sd(xs), 4)}` : ''} (${xs.map((x) => round(x, 4)).join(' / ')})`;
      })
      .join(', ');
    figures[`${v.name}_epoch`] = best.epoch;
    console.log(`${DATA} ${v.name}: best epoch ${best.epoch}, validation ${shown}`);
  }
  console.log(JSON.stringify({ data: DATA, seeds: SEEDS.length, ...figures }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
