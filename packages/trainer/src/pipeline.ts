import { type FeatureSpec, type TrainingSetup, Random, fingerprint } from '@recsys/data';
import { join } from 'node:path';
import type { EvaluationReport, ModelReport, RankingEvaluation, RetrievalEvaluation } from './eval/report.js';
import { writeReport } from './eval/report.js';
import { type DataSource, type SetupPreparation, prepareSetup } from './data-source.js';
import {
  evaluateDlrm,
  evaluatePreranker,
  evaluateRetrieval,
  popularityRetrieval,
  rankingValidation,
  retrievalValidation,
  towerVectors,
  trainedTowerVectors,
} from './evaluate-models.js';
import { OPSET, exportGraph } from './export/exporter.js';
import {
  type ModelManifest,
  type ModelName,
  MANIFEST_FORMAT,
  VersionWriter,
  loadModelVersion,
  nextVersion,
  sha256,
} from '@recsys/model-format';
import { type WarmStart, warmStartFrom } from './train/warm-start.js';
import { OrtRunner } from './graph/ort-runner.js';
import { type EncodedSources, batchFeeds, describeInputs } from './models/inputs.js';
import type { Tower } from './models/two-tower.js';
import type { LoopResult, ProgressListener } from './train/loop.js';
import {
  PRERANKING_DEFAULTS,
  type PrerankingTrainOptions,
  type TowerVectors,
  type TrainedPreranking,
  prerankerLayout,
  prerankingFeeds,
  trainPreranker,
} from './train/preranking.js';
import { RANKING_DEFAULTS, type RankingTrainOptions, type TrainedRanking, rankingFeeds, splitRows, trainDlrm } from './train/ranking.js';
import {
  type NegativeSampling,
  type NegativesRecord,
  NEGATIVE_SAMPLING_DEFAULTS,
  allPositive,
  labelCounts,
  onSampledRows,
  withSampledNegatives,
} from './train/negatives.js';
import { RETRIEVAL_DEFAULTS, type RetrievalTrainOptions, type TrainedRetrieval, trainTwoTower } from './train/retrieval.js';

type Tunables<T> = Partial<Omit<T, 'seed' | 'onProgress' | 'threads'>>;

export interface TrainRunOptions {
  /** Model root: versions go to <out>/<model>/<version>/, the report to <out>/reports/<version>/. */
  out: string;
  seed?: number;
  /** onnxruntime threads per training step; 1 is fastest for these small models. */
  threads?: number;
  retrieval?: Tunables<RetrievalTrainOptions>;
  ranking?: Tunables<RankingTrainOptions>;
  preranking?: Tunables<PrerankingTrainOptions>;
  /** Also train the two-tower without logQ correction and report it as the baseline (not exported). */
  compareUncorrected?: boolean;
  /** Which models to train (default all); the pre-ranker reads the two-tower of its own run, so it needs 'two-tower'. */
  models?: readonly ModelName[];
  /** User history features and a validation slice (per-epoch validation, the best epoch kept). */
  preparation?: SetupPreparation;
  /** With a validation slice: epochs without a better validation score before a model stops early. */
  patience?: number;
  /** What `recsys tune` chose, recorded in the manifests. */
  tuning?: Partial<Record<ModelName, Record<string, unknown>>>;
  /**
   * Implicit feedback (data whose interactions are all positive): negatives sampled for DLRM and the
   * pre-ranker (default NEGATIVE_SAMPLING_DEFAULTS; ratio 0 turns it off, and such a run is refused).
   */
  negatives?: Partial<NegativeSampling>;
  /**
   * Start each model from a published version's params where names and shapes allow (the retrain gate starts the
   * candidate from the serving version); a model the version lacks starts fresh. Recorded in the manifests.
   */
  warmStart?: { root: string; version: string };
  /** Publish as this version (default: one more than any under `out`); the retrain gate stages candidates so. */
  version?: string;
  /**
   * Fault injection for the retrain gate's tests and benchmark: the fitted rows' labels are shuffled (each
   * model's train labels, after negative sampling), so the candidate learns noise. The test rows stay true.
   */
  shuffleTrainLabels?: boolean;
  onProgress?: ProgressListener;
  log?: (line: string) => void;
}

export interface RunResult {
  version: string;
  dirs: Record<ModelName, string>;
  manifests: Record<ModelName, ModelManifest>;
  report: EvaluationReport;
  reportFiles: { json: string; html: string };
  /** The trained models in memory (their graphs and params), for checks against the exported files. */
  trained: { twoTower: TrainedRetrieval; dlrm: TrainedRanking; preranker: TrainedPreranking; setup: TrainingSetup; vectors: TowerVectors };
}

/** A run of some of the models (`models` given): only those have a directory, a manifest and trained state. */
export interface PartialRunResult extends Omit<RunResult, 'dirs' | 'manifests' | 'trained'> {
  dirs: Partial<Record<ModelName, string>>;
  manifests: Partial<Record<ModelName, ModelManifest>>;
  trained: Partial<Omit<RunResult['trained'], 'setup'>> & { setup: TrainingSetup };
}

export const MODEL_NAMES: readonly ModelName[] = ['two-tower', 'dlrm', 'preranker'];

function modelsToTrain(models: readonly ModelName[] | undefined): Set<ModelName> {
  const wanted = new Set(models ?? MODEL_NAMES);
  const unknown = [...wanted].find((name) => !MODEL_NAMES.includes(name));
  if (unknown !== undefined) throw new Error(`trainRun: models: unknown model "${unknown}" (models are ${MODEL_NAMES.join(', ')})`);
  if (wanted.size === 0) throw new Error('trainRun: models: name at least one model');
  if (wanted.has('preranker') && !wanted.has('two-tower'))
    throw new Error("trainRun: models: the pre-ranker is trained on the two-tower's vectors of the same run; add 'two-tower'");
  return wanted;
}

const CHECK_ROWS = 64;

function firstRows(n: number, count: number): Int32Array {
  return Int32Array.from({ length: Math.min(n, count) }, (_, k) => k);
}

function trainingRecord(
  o: { seed: number; epochs: number; batchSize: number; lr: number; warmStart?: WarmStart },
  loop: LoopResult,
  extra: Record<string, unknown> = {},
) {
  return {
    seed: o.seed,
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    examples: loop.examples,
    seconds: loop.seconds,
    examplesPerS: loop.examplesPerS,
    epochsRun: loop.epochsRun,
    bestEpoch: loop.bestEpoch,
    ...(loop.validation ? { validation: loop.validation } : {}),
    ...(loop.warmStarted ? { warmStarted: loop.warmStarted } : {}),
    ...extra,
  };
}

function validationReport(loop: LoopResult): Pick<ModelReport, 'validation' | 'bestEpoch'> {
  return loop.validation ? { validation: loop.validation, bestEpoch: loop.bestEpoch } : {};
}

function rankingMetrics(e: RankingEvaluation): Record<string, number> {
  return { auc: e.auc, logloss: e.logloss, f1: e.f1, precision: e.precision, recall: e.recall, threshold: e.threshold };
}

/**
 * One training run: the two-tower (and its uncorrected baseline), DLRM and the pre-ranker are
 * trained, exported (each graph checked against the trainer's forward pass), evaluated from the
 * exported graphs, and published as one new version with manifests and an evaluation report.
 */
export async function trainRun(source: DataSource, options: TrainRunOptions & { models?: undefined }): Promise<RunResult>;
export async function trainRun(source: DataSource, options: TrainRunOptions): Promise<PartialRunResult>;
export async function trainRun(source: DataSource, options: TrainRunOptions): Promise<PartialRunResult> {
  const wanted = modelsToTrain(options.models);
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? 0;
  const threads = options.threads ?? 1;
  const warm = options.warmStart ? await warmStarts(options.warmStart) : {};
  const common = { seed, threads, onProgress: options.onProgress };
  const preparation = options.preparation ?? {};
  const prepared = prepareSetup(source, preparation);
  const { setup, fit } = options.shuffleTrainLabels ? shuffledTrainLabels(prepared, seed) : prepared;
  const validating = preparation.validation === true;
  const { dataset } = setup;
  // Ranking models fit labels: implicit feedback gets sampled negatives, the two-tower keeps the positives.
  const ranking = rankingData(setup, fit, options.negatives, seed);
  if (options.shuffleTrainLabels) Object.assign(ranking, shuffledTrainLabels(ranking, seed + 1));
  const trainRows = setup.split.reduce((n, s) => n + s, 0);
  const data = {
    source,
    name: dataset.name,
    fingerprint: fingerprint(setup),
    users: dataset.users.ids.length,
    items: dataset.items.ids.length,
    trainRows,
    testRows: setup.split.length - trainRows,
    ...(options.preparation ? { preparation } : {}),
  };
  const version = options.version ?? (await nextVersion(options.out));
  const createdAt = new Date().toISOString();
  const metadata = (name: string) => ({ 'recsys.model': name, 'recsys.version': version, 'recsys.data.fingerprint': data.fingerprint });
  log(
    `data: ${dataset.name}, ${data.users} users, ${data.items} items, ${data.trainRows} train / ${data.testRows} test rows; version ${version}`,
  );

  // What each stage leaves: published by the commits, in order, once every stage has trained.
  const dirs: Partial<Record<ModelName, string>> = {};
  const manifests: Partial<Record<ModelName, ModelManifest>> = {};
  const models: ModelReport[] = [];
  const trained: PartialRunResult['trained'] = { setup };
  const commits: (() => Promise<void>)[] = [];
  const staged: VersionWriter[] = [];
  const stage = async (name: ModelName) => {
    const writer = await VersionWriter.open(options.out, name, version);
    staged.push(writer);
    return writer;
  };
  try {
    return await trainStages();
  } catch (error) {
    // Nothing half-written stays behind: staged directories are removed, published versions untouched.
    await Promise.all(staged.map((w) => w.abort()));
    throw error;
  }

  async function trainStages(): Promise<PartialRunResult> {
    if (wanted.has('dlrm') || wanted.has('preranker')) assertTwoClasses(ranking.fit, ranking.negatives);
    if (wanted.has('two-tower')) await trainTwoTowerStage();
    if (wanted.has('dlrm')) await trainDlrmStage();
    if (wanted.has('preranker')) await trainPrerankerStage();

    // Publish: each version directory appears whole; the pre-ranker last, as it depends on the two-tower.
    for (const commit of commits) await commit();
    const report: EvaluationReport = {
      createdAt,
      dataset: {
        name: dataset.name,
        fingerprint: data.fingerprint,
        users: data.users,
        items: data.items,
        trainRows: data.trainRows,
        testRows: data.testRows,
      },
      models,
    };
    const reportFiles = await writeReport(join(options.out, 'reports', version), report);
    return { version, dirs, manifests, report, reportFiles, trained };
  }

  async function trainTwoTowerStage(): Promise<void> {
    const rOpts = { ...RETRIEVAL_DEFAULTS, ...options.retrieval, ...common, warmStart: warm['two-tower'] };
    const tt = await trainTwoTower(fit, rOpts, validating ? retrievalValidation(fit, options.patience) : undefined);
    const ttWriter = await stage('two-tower');
    const exportTower = (side: 'user' | 'item', tower: Tower, sources: EncodedSources, count: number) =>
      exportGraph(
        ttWriter,
        `${side}-tower.onnx`,
        `${side}_tower`,
        { embedding: tower.output },
        describeInputs(tower.layout, `${side}_`),
        batchFeeds(
          tower.layout,
          sources,
          { [side]: firstRows(CHECK_ROWS, count), context: firstRows(CHECK_ROWS, count) },
          Math.min(CHECK_ROWS, count),
          `${side}_`,
        ),
        metadata(`two-tower.${side}`),
      );
    const userGraph = await exportTower('user', tt.model.user, tt.userSources, data.users);
    const itemGraph = await exportTower('item', tt.model.item, tt.itemSources, data.items);
    const userRunner = await OrtRunner.create(userGraph.bytes, { threads: 1 });
    const itemRunner = await OrtRunner.create(itemGraph.bytes, { threads: 1 });
    const vectors = await towerVectors(setup, userRunner, itemRunner, tt.model.user.spec, tt.model.item.spec);
    await userRunner.release();
    await itemRunner.release();
    const itemVectorBytes = new Uint8Array(vectors.items.buffer, vectors.items.byteOffset, vectors.items.byteLength);
    await ttWriter.write('item-vectors.f32', itemVectorBytes);
    await ttWriter.write('item-ids.txt', `${dataset.items.ids.join('\n')}\n`);
    const retrieval = await evaluateRetrieval(setup, vectors);
    const popularity = await popularityRetrieval(setup);
    log(
      `two-tower: ${Object.entries(retrieval.recall)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
    let baseline: RetrievalEvaluation | undefined;
    if (options.compareUncorrected ?? true) {
      const plain = await trainTwoTower(
        fit,
        { ...rOpts, correction: false },
        validating ? retrievalValidation(fit, options.patience) : undefined,
      );
      baseline = await evaluateRetrieval(setup, await trainedTowerVectors(setup, plain.model));
      log(
        `two-tower without correction: ${Object.entries(baseline.recall)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ')}`,
      );
    }
    const ttManifest: ModelManifest = {
      format: MANIFEST_FORMAT,
      name: 'two-tower',
      version,
      createdAt,
      opset: OPSET,
      graphs: { user_tower: userGraph.description, item_tower: itemGraph.description },
      featureSpecs: { user: setup.userTower, item: setup.itemTower },
      config: { ...tt.model.config },
      training: trainingRecord(rOpts, tt.loop, {
        correction: rOpts.correction,
        estimator: rOpts.estimator,
        sampledNegatives: rOpts.sampledNegatives ?? 0,
        ...(options.tuning?.['two-tower'] ? { tuning: options.tuning['two-tower'] } : {}),
      }),
      metrics: {
        ...retrieval.recall,
        ...(baseline ? Object.fromEntries(Object.entries(baseline.recall).map(([k, v]) => [`${k}_uncorrected`, v])) : {}),
        ...Object.fromEntries(Object.entries(popularity.recall).map(([k, v]) => [`${k}_popularity`, v])),
      },
      data,
      itemVectors: {
        file: 'item-vectors.f32',
        idsFile: 'item-ids.txt',
        count: data.items,
        dim: vectors.dim,
        dtype: 'float32',
        sha256: sha256(itemVectorBytes),
      },
    };
    manifests['two-tower'] = ttManifest;
    Object.assign(trained, { twoTower: tt, vectors });
    commits.push(async () => {
      dirs['two-tower'] = await ttWriter.commit(ttManifest);
    });
    models.push({
      name: 'two-tower',
      version,
      kind: 'two-tower',
      trainExamplesPerS: tt.loop.examplesPerS,
      epochs: rOpts.epochs,
      trainingCurve: tt.loop.curve,
      ...validationReport(tt.loop),
      options: {
        ...tt.model.config,
        sampledNegatives: rOpts.sampledNegatives ?? 0,
        correction: rOpts.correction,
        lr: rOpts.lr,
        batchSize: rOpts.batchSize,
        history: preparation.history?.tower ?? 0,
        ...(source.kind === 'ml100k' ? { itemSide: source.itemSide === true } : {}),
        ...(preparation.preset ? { preset: preparation.preset } : {}),
      },
      retrieval,
      popularity,
      ...(baseline ? { baseline: { label: 'without logQ correction', retrieval: baseline } } : {}),
    });
  }

  async function trainDlrmStage(): Promise<void> {
    const dOpts = { ...RANKING_DEFAULTS, ...options.ranking, ...common, warmStart: warm.dlrm };
    const dlrm = await trainDlrm(ranking.fit, dOpts, validating ? rankingValidation(ranking.fit, options.patience) : undefined);
    const dWriter = await stage('dlrm');
    const checkRows = splitRows(ranking.setup, true).subarray(0, CHECK_ROWS);
    const dGraph = await exportGraph(
      dWriter,
      'model.onnx',
      'dlrm',
      { probability: dlrm.model.probability },
      describeInputs(dlrm.model.layout),
      rankingFeeds(dlrm.model.layout, ranking.setup, dlrm.sources, checkRows),
      metadata('dlrm'),
    );
    const dRunner = await OrtRunner.create(dGraph.bytes, { threads: 1 });
    const dEval = await evaluateDlrm(ranking.setup, dRunner, setup.ranking, dlrm.sources).finally(() => dRunner.release());
    log(`dlrm: auc ${dEval.auc.toFixed(4)}, logloss ${dEval.logloss.toFixed(4)}, f1 ${dEval.f1.toFixed(4)}`);
    assertFiniteMetrics('dlrm', dEval);
    const dManifest: ModelManifest = {
      format: MANIFEST_FORMAT,
      name: 'dlrm',
      version,
      createdAt,
      opset: OPSET,
      graphs: { model: dGraph.description },
      featureSpecs: { model: setup.ranking },
      config: { ...dlrm.model.config, interactionPairs: dlrm.model.interactionPairs },
      training: trainingRecord(dOpts, dlrm.loop, {
        negatives: ranking.negatives,
        ...(options.tuning?.dlrm ? { tuning: options.tuning.dlrm } : {}),
      }),
      metrics: rankingMetrics(dEval),
      data,
    };
    manifests.dlrm = dManifest;
    trained.dlrm = dlrm;
    commits.push(async () => {
      dirs.dlrm = await dWriter.commit(dManifest);
    });
    models.push({
      name: 'dlrm',
      version,
      kind: 'dlrm',
      trainExamplesPerS: dlrm.loop.examplesPerS,
      epochs: dOpts.epochs,
      trainingCurve: dlrm.loop.curve,
      ...validationReport(dlrm.loop),
      options: {
        ...dlrm.model.config,
        lr: dOpts.lr,
        batchSize: dOpts.batchSize,
        history: preparation.history?.ranking ?? 0,
        historyItems: preparation.history?.rankingItems ?? 'all',
        ...(preparation.preset ? { preset: preparation.preset } : {}),
        negatives: ranking.negatives,
      },
      ranking: dEval,
    });
  }

  /** The pre-ranker over the two-tower's vectors of this run (trained first). */
  async function trainPrerankerStage(): Promise<void> {
    const { vectors } = trained;
    if (vectors === undefined) throw new Error('trainRun: the pre-ranker needs the two-tower of this run');
    const checkRows = splitRows(ranking.setup, true).subarray(0, CHECK_ROWS);
    const pOpts = { ...PRERANKING_DEFAULTS, ...options.preranking, ...common, warmStart: warm.preranker };
    const pre = await trainPreranker(ranking.fit, vectors, pOpts);
    const pWriter = await stage('preranker');
    const prerankSpec: FeatureSpec = { features: pre.layout?.continuous ?? [] };
    const pGraph = await exportGraph(
      pWriter,
      'model.onnx',
      'preranker',
      { probability: pre.model.probability },
      [
        { name: 'user_embedding', dtype: 'float32', shape: ['B', vectors.dim], features: ['two-tower user vector'] },
        { name: 'item_embedding', dtype: 'float32', shape: ['B', vectors.dim], features: ['two-tower item vector'] },
        ...describeInputs(prerankerLayout(prerankSpec) ?? { categorical: [], multi: [], continuous: [] }),
      ],
      prerankingFeeds(pre.layout, ranking.setup, pre.sources, vectors, checkRows),
      metadata('preranker'),
    );
    const pRunner = await OrtRunner.create(pGraph.bytes, { threads: 1 });
    const preranking = await evaluatePreranker(ranking.setup, pRunner, prerankSpec, vectors, pre.sources).finally(() => pRunner.release());
    log(`preranker: auc ${preranking.auc.toFixed(4)}, logloss ${preranking.logloss.toFixed(4)}`);
    assertFiniteMetrics('preranker', preranking);
    const pManifest: ModelManifest = {
      format: MANIFEST_FORMAT,
      name: 'preranker',
      version,
      createdAt,
      opset: OPSET,
      graphs: { model: pGraph.description },
      featureSpecs: { model: prerankSpec },
      config: { ...pre.model.config, embeddingDim: vectors.dim },
      training: trainingRecord(pOpts, pre.loop, { negatives: ranking.negatives }),
      metrics: rankingMetrics(preranking),
      data,
      dependsOn: { 'two-tower': version },
    };
    manifests.preranker = pManifest;
    trained.preranker = pre;
    commits.push(async () => {
      dirs.preranker = await pWriter.commit(pManifest);
    });
    models.push({
      name: 'preranker',
      version,
      kind: 'preranker',
      trainExamplesPerS: pre.loop.examplesPerS,
      epochs: pOpts.epochs,
      trainingCurve: pre.loop.curve,
      options: { lr: pOpts.lr, batchSize: pOpts.batchSize, negatives: ranking.negatives },
      ranking: preranking,
    });
  }
}

/** The rows DLRM and the pre-ranker fit and are evaluated on: the data's own, or with sampled negatives for implicit feedback. */
export function rankingData(
  setup: TrainingSetup,
  fit: TrainingSetup,
  wanted: Partial<NegativeSampling> | undefined,
  seed: number,
): { setup: TrainingSetup; fit: TrainingSetup; negatives: NegativesRecord } {
  if (!allPositive(setup)) return { setup, fit, negatives: { source: 'logged' } };
  const sampling = { ...NEGATIVE_SAMPLING_DEFAULTS, ...wanted };
  if (sampling.ratio === 0) return { setup, fit, negatives: { source: 'none' } };
  // Sampled on the fitted rows (popularity from them only); the evaluated setup takes the same rows.
  const sampled = withSampledNegatives(fit, { ...sampling, seed: sampling.seed ?? seed });
  return {
    fit: sampled.setup,
    setup: onSampledRows(setup, sampled.setup, sampled.parent),
    negatives: { source: 'sampled', sampler: sampling.sampler, ratio: sampling.ratio, sampled: sampled.sampled },
  };
}

/** A ranking model needs both labels among its train rows; one class trains a constant (loss 0, AUC undefined). */
function assertTwoClasses(fit: TrainingSetup, negatives: NegativesRecord): void {
  const { rows, positives } = labelCounts(fit, 1);
  if (rows > 0 && positives > 0 && positives < rows) return;
  const held = positives === 0 ? 'no positives' : 'only positives';
  const hint =
    negatives.source === 'none'
      ? ' (the data is implicit feedback and negative sampling is off: give a ratio >= 1, e.g. --ranking-negatives 4)'
      : '';
  throw new Error(`ranking training refused: the train labels hold one class (${held} in ${rows} rows)${hint}; nothing was published`);
}

/** A model whose test metrics are not finite is not published. */
function assertFiniteMetrics(model: string, e: RankingEvaluation): void {
  const bad = (['auc', 'logloss'] as const).filter((k) => !Number.isFinite(e[k]));
  if (bad.length === 0) return;
  throw new Error(
    `${model}: ${bad.map((k) => `${k} ${e[k]}`).join(', ')} on ${e.testRows} test rows (${e.positives} positive): metrics are not finite; nothing was published`,
  );
}

/** Both setups with the labels of the fitted rows (split 1 of `fit`) shuffled among themselves; other rows untouched. */
function shuffledTrainLabels<T extends { setup: TrainingSetup; fit: TrainingSetup }>(
  prepared: T,
  seed: number,
): { setup: TrainingSetup; fit: TrainingSetup } {
  const { setup, fit } = prepared;
  const rows: number[] = [];
  for (let r = 0; r < fit.split.length; r++) if (fit.split[r] === 1) rows.push(r);
  const order = new Random(seed).permutation(rows.length);
  const value = Float32Array.from(fit.dataset.interactions.value);
  rows.forEach((r, k) => (value[r] = fit.dataset.interactions.value[rows[order[k]!]!]!));
  const dataset = { ...fit.dataset, interactions: { ...fit.dataset.interactions, value } };
  return { setup: { ...setup, dataset }, fit: { ...fit, dataset } };
}

/** The params of each model of a published version, to warm-start from; models it lacks are absent. */
async function warmStarts(from: { root: string; version: string }): Promise<Partial<Record<ModelName, WarmStart>>> {
  const out: Partial<Record<ModelName, WarmStart>> = {};
  for (const name of MODEL_NAMES) {
    const loaded = await loadModelVersion(from.root, name, from.version).catch(() => undefined);
    if (loaded) out[name] = warmStartFrom(Object.values(loaded.graphs));
  }
  return out;
}
