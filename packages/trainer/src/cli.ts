#!/usr/bin/env node
import { generateSynthetic, numberFlag, UsageError, writeDatasetFiles } from '@recsys/data';
import { Presets, SingleBar } from 'cli-progress';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SYNTHETIC, type DataSource, describeSource } from './data-source.js';
import { evaluateVersion } from './evaluate-version.js';
import { type GateTolerances, retrain } from './retrain.js';
import type { Progress } from './train/loop.js';
import { type TrainRunOptions, trainRun } from './pipeline.js';
import { strongSettings } from './strong.js';
import { TUNE_GRID, type TuneGrid, tune } from './tune.js';
import { DLRM_INTERACTIONS, type DlrmInteraction } from './models/dlrm.js';
import { RANKING_DEFAULTS } from './train/ranking.js';
import { RETRIEVAL_DEFAULTS } from './train/retrieval.js';
import { NEGATIVE_SAMPLERS, type NegativeSampler } from './train/negatives.js';
import { NO_USER_HISTORY, type UserHistoryOptions } from '@recsys/data';

const usage = `usage: recsys COMMAND [options]

  train      trains the two-tower, DLRM and pre-ranking models, exports them to ONNX with
             manifests into <out>/<model>/<version>/ and writes <out>/reports/<version>/report.{json,html}
             --data SOURCE          synthetic (default) | ml100k[:DIR] | files:DIR
             --out DIR              model root (default: models)
             --seed N               (default 0)
             --retrieval-epochs N --ranking-epochs N --preranking-epochs N
             --history N            recent positive items per request in the user tower and DLRM
                                    (synthetic and files data; default 10, 0 leaves them out)
             --no-baseline          skip the uncorrected two-tower trained for comparison
             --strong               the strong settings as defaults (user history, mixed negatives, DCN-v2; per
                                    data kind as chosen on validation: test/bench/results/strong-choices.md;
                                    two-tower batch 128; synthetic and files data: 3 two-tower and 2 DLRM epochs); every flag overrides them
             --item-side            ML-100K: every genre (pooled) and the exact release year in the item tower (on with --strong)
             --user-history N       slots of the user's fitted positive items in the user tower (0: off;
                                    --strong: 100 on ml100k, 0 elsewhere, as measured)
             --ranking-history N    slots of the user's fitted items in DLRM (0: off; --strong: 100)
             --ranking-history-items all|positive   which fitted items DLRM's history holds (default all;
                                    --strong: all on ml100k, positive elsewhere: what the feature service's history holds)
             --negatives N          uniformly sampled negatives per two-tower batch (mixed negatives; 0: in-batch only)
             --temperature T        two-tower softmax temperature
             --retrieval-lr X --ranking-lr X
             --retrieval-batch-size N --ranking-batch-size N   examples per step (the two-tower's is also its
                                    in-batch negatives; --strong: 128, chosen on validation)
             --interaction dot|dcn|dotdcn   DLRM interaction (default dot); --cross-layers N (DCN-v2, default 2)
             --ranking-negatives N  implicit feedback (every interaction positive): negatives sampled per positive for
                                    DLRM and the pre-ranker, train and test alike (default 4; 0: off, and the run is refused)
             --negative-sampler uniform|popularity   how they are drawn (default uniform; popularity: by train positives)
             --validation           fit on train minus a validation slice, validate after every epoch, keep the best epoch
             --patience N           with --validation: stop after N epochs without a better validation score
  tune       grid search on the validation slice of train (never the test split), then trains and publishes
             the chosen settings on all of train like train (same options); the choice is in the manifests
             --temperatures A,B,..  --retrieval-lrs A,B,..  --ranking-lrs A,B,..
             --retrieval-epochs N --ranking-epochs N   (the most epochs tried; every epoch up to it is a candidate)
             --threads N            onnxruntime threads per step (default 1: fastest for these models)
             --users N --items N --interactions-per-user N --data-seed N   (synthetic data size)
             --start-time UNIX_SECONDS   start of the synthetic 30-day window (default 2025-01-01)
  retrain    one round of retraining with a gate: trains all three models on the newest window as a candidate
             (staged under <models>/.candidates/, invisible to the services), evaluates the candidate and the
             serving version on the same held-out rows of the window (its latest 20% by time), and publishes the
             candidate (then builds its index) only when no gated metric is worse beyond its tolerance; otherwise
             the serving version stays and the report says why. Writes a JSON report (both versions' metrics)
             and prints it; exits 0 whether published or kept, 1 on failure.
             --models DIR           the serving model root (default: models)
             --since TIME --until TIME   the window: exported from the feature service's event log first
                                    (recsys-events export: Unix ms, ISO-8601, now, now-24h) into <models>/windows/<version>/
             --feedback-window D    how long after an answer a click makes its item a positive (default 1h)
             --data files:DIR       or the window as dataset files already (label 0 impressions and label 1
                                    feedback, or positives only: negatives are then sampled)
             --tolerance-auc X      largest AUC drop (DLRM, pre-ranker) still published (default 0.01)
             --tolerance-recall X   largest two-tower Recall@10/50/100 drop still published (default 0.01)
             --features HOST:PORT   the feature service (the log's export, the index build; default $FEATURES_ADDRESS)
             --index-dir DIR        build the published two-tower's index there (retrieval reloads it)
             --qdrant URL --collection NAME   or in Qdrant (as recsys-index build takes them)
             --index-cli PATH       the index builder (default: the workspace's services/retrieval/dist/index-cli.js)
             --report PATH          (default <models>/retrain/<candidate version>.json)
             --cold-start           train the candidate from scratch (default: from the serving version's params
                                    where names and shapes match: a grown vocabulary starts that table fresh)
             --shuffle-labels       fault injection: the candidate fits shuffled train labels (the gate must refuse it)
             and train's model flags (epochs, learning rates, --ranking-negatives, --negative-sampler, --seed)
  evaluate   evaluates a published version from its files (ONNX graphs and manifests) on its data
             --models DIR (default: models)  --version N (default: newest)
  data synth writes a synthetic dataset as users.jsonl, items.csv, interactions.csv
             --out DIR --data-seed N --users N --items N --interactions-per-user N --start-time UNIX_SECONDS

Data: ml100k reads MovieLens 100K (u.data, u.item, u.user; default ../shared/datasets/ml-100k) with
the PROTOCOL.md split; files:DIR reads users.jsonl|csv, items.csv|jsonl and interactions.csv.
The funnel evaluation through the running services is recsys-evaluate-pipeline (packages/pipeline).`;

function numberList(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((v) => numberFlag(flag, v.trim(), 'positive')!);
}

type Values = Record<string, string | boolean | undefined>;

/** The model settings of train and tune: the defaults (or --strong's), each overridden by its flag. */
function modelOptions(
  values: Values,
  source: DataSource,
): Pick<TrainRunOptions, 'retrieval' | 'ranking' | 'preparation' | 'patience' | 'negatives'> {
  const str = (flag: string) => values[flag] as string | undefined;
  const strong = values.strong === true;
  const preset = strong ? strongSettings(source) : undefined;
  const retrieval = { ...(preset?.retrieval ?? RETRIEVAL_DEFAULTS) };
  const ranking = { ...(preset?.ranking ?? RANKING_DEFAULTS) };
  const history: UserHistoryOptions = { ...(preset?.history ?? NO_USER_HISTORY) };
  const set = <T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined) => {
    if (value !== undefined) target[key] = value;
  };
  set(retrieval, 'epochs', numberFlag('retrieval-epochs', str('retrieval-epochs'), 'count'));
  set(retrieval, 'lr', numberFlag('retrieval-lr', str('retrieval-lr'), 'positive'));
  set(retrieval, 'sampledNegatives', numberFlag('negatives', str('negatives'), 'whole'));
  const temperature = numberFlag('temperature', str('temperature'), 'positive');
  if (temperature !== undefined) retrieval.twoTower = { ...retrieval.twoTower, temperature };
  set(ranking, 'epochs', numberFlag('ranking-epochs', str('ranking-epochs'), 'count'));
  set(ranking, 'lr', numberFlag('ranking-lr', str('ranking-lr'), 'positive'));
  set(retrieval, 'batchSize', numberFlag('retrieval-batch-size', str('retrieval-batch-size'), 'count'));
  set(ranking, 'batchSize', numberFlag('ranking-batch-size', str('ranking-batch-size'), 'count'));
  const interaction = str('interaction');
  if (interaction !== undefined) {
    if (!DLRM_INTERACTIONS.includes(interaction as DlrmInteraction))
      throw new UsageError(`--interaction: expected one of ${DLRM_INTERACTIONS.join(', ')}, got "${interaction}"`);
    ranking.dlrm = { ...ranking.dlrm, interaction: interaction as DlrmInteraction };
  }
  const crossLayers = numberFlag('cross-layers', str('cross-layers'), 'count');
  if (crossLayers !== undefined) ranking.dlrm = { ...ranking.dlrm, crossLayers };
  set(history, 'tower', numberFlag('user-history', str('user-history'), 'whole'));
  set(history, 'ranking', numberFlag('ranking-history', str('ranking-history'), 'whole'));
  const items = str('ranking-history-items');
  if (items !== undefined) {
    if (items !== 'all' && items !== 'positive') throw new UsageError(`--ranking-history-items: expected all or positive, got "${items}"`);
    history.rankingItems = items;
  }
  const patience = numberFlag('patience', str('patience'), 'count');
  if (patience !== undefined && !values.validation) throw new UsageError('--patience: needs --validation (a slice to validate on)');
  const withHistory = history.tower > 0 || history.ranking > 0;
  const negatives: TrainRunOptions['negatives'] = {};
  set(negatives, 'ratio', numberFlag('ranking-negatives', str('ranking-negatives'), 'whole'));
  const sampler = str('negative-sampler');
  if (sampler !== undefined) {
    if (!NEGATIVE_SAMPLERS.includes(sampler as NegativeSampler))
      throw new UsageError(`--negative-sampler: expected one of ${NEGATIVE_SAMPLERS.join(', ')}, got "${sampler}"`);
    negatives.sampler = sampler as NegativeSampler;
  }
  return {
    negatives,
    retrieval,
    ranking,
    patience,
    preparation: {
      ...(withHistory ? { history } : {}),
      ...(values.validation ? { validation: true } : {}),
      ...(preset ? { preset: preset.preset } : {}),
    },
  };
}

function syntheticOptions(values: Values) {
  const startTime = numberFlag('start-time', values['start-time'] as string | undefined, 'whole');
  return {
    seed: numberFlag('data-seed', values['data-seed'] as string | undefined, 'whole') ?? DEFAULT_SYNTHETIC.seed,
    users: numberFlag('users', values.users as string | undefined, 'count') ?? DEFAULT_SYNTHETIC.users,
    items: numberFlag('items', values.items as string | undefined, 'count') ?? DEFAULT_SYNTHETIC.items,
    interactionsPerUser:
      numberFlag('interactions-per-user', values['interactions-per-user'] as string | undefined, 'count') ??
      DEFAULT_SYNTHETIC.interactionsPerUser,
    // Absent unless given, so the data source (and its fingerprint) of runs without it stays as it was.
    ...(startTime === undefined ? {} : { startTime }),
  };
}

function dataSource(values: Values): DataSource {
  const spec = (values.data as string | undefined) ?? 'synthetic';
  const history = numberFlag('history', values.history as string | undefined, 'whole');
  const setup = history === undefined ? {} : { setup: { historyLength: history } };
  const ml100k = spec === 'ml100k' || spec.startsWith('ml100k:');
  if (history !== undefined && ml100k)
    throw new UsageError('--history: the ML-100K protocol fixes its features; use it with synthetic or files data');
  if (values['item-side'] === true && !ml100k)
    throw new UsageError("--item-side: the strong item features are ML-100K's (other data puts every item column in the item tower)");
  if (spec === 'synthetic') return { kind: 'synthetic', options: syntheticOptions(values), ...setup };
  if (ml100k) {
    const itemSide = values['item-side'] === true || values.strong === true;
    return {
      kind: 'ml100k',
      dir: resolve(spec.slice('ml100k:'.length) || '../shared/datasets/ml-100k'),
      ...(itemSide ? { itemSide: true } : {}),
    };
  }
  if (spec.startsWith('files:') && spec.length > 'files:'.length)
    return { kind: 'files', dir: resolve(spec.slice('files:'.length)), ...setup };
  throw new UsageError(`--data: expected synthetic, ml100k[:DIR] or files:DIR, got "${spec}"`);
}

/** A progress bar per model on a terminal; a line per epoch otherwise. */
function progressReporter(): { onProgress: (p: Progress) => void; stop: () => void } {
  let bar: SingleBar | undefined;
  let model = '';
  let lastEpoch = 0;
  const tty = process.stderr.isTTY;
  return {
    onProgress(p) {
      if (p.model !== model) {
        bar?.stop();
        model = p.model;
        lastEpoch = 0;
        bar = tty
          ? new SingleBar(
              {
                format: `${p.model.padEnd(26)} {bar} {percentage}% | epoch {epoch}/{epochs} | loss {loss} | {rate} ex/s`,
                hideCursor: true,
              },
              Presets.shades_classic,
            )
          : undefined;
        bar?.start(p.epochs * p.stepsPerEpoch, 0, { epoch: 1, epochs: p.epochs, loss: '-', rate: '-' });
      }
      bar?.update(p.step, { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4), rate: Math.round(p.examplesPerS) });
      if (!tty && p.step === p.epoch * p.stepsPerEpoch && p.epoch !== lastEpoch) {
        lastEpoch = p.epoch;
        process.stderr.write(`${p.model}: epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} ${Math.round(p.examplesPerS)} ex/s\n`);
      }
    },
    stop: () => bar?.stop(),
  };
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      models: { type: 'string' },
      version: { type: 'string' },
      seed: { type: 'string' },
      'data-seed': { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      'interactions-per-user': { type: 'string' },
      'start-time': { type: 'string' },
      'retrieval-epochs': { type: 'string' },
      'ranking-epochs': { type: 'string' },
      'preranking-epochs': { type: 'string' },
      threads: { type: 'string' },
      history: { type: 'string' },
      'no-baseline': { type: 'boolean' },
      strong: { type: 'boolean' },
      'item-side': { type: 'boolean' },
      'user-history': { type: 'string' },
      'ranking-history': { type: 'string' },
      'ranking-history-items': { type: 'string' },
      negatives: { type: 'string' },
      temperature: { type: 'string' },
      'retrieval-lr': { type: 'string' },
      'ranking-lr': { type: 'string' },
      'retrieval-batch-size': { type: 'string' },
      'ranking-batch-size': { type: 'string' },
      interaction: { type: 'string' },
      'cross-layers': { type: 'string' },
      validation: { type: 'boolean' },
      patience: { type: 'string' },
      'ranking-negatives': { type: 'string' },
      'tolerance-auc': { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      'feedback-window': { type: 'string' },
      'tolerance-recall': { type: 'string' },
      'index-dir': { type: 'string' },
      'index-cli': { type: 'string' },
      qdrant: { type: 'string' },
      collection: { type: 'string' },
      features: { type: 'string' },
      report: { type: 'string' },
      'shuffle-labels': { type: 'boolean' },
      'cold-start': { type: 'boolean' },
      'negative-sampler': { type: 'string' },
      temperatures: { type: 'string' },
      'retrieval-lrs': { type: 'string' },
      'ranking-lrs': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub] = positionals;
  if (values.help || command === undefined) {
    console.log(usage);
    return values.help ? 0 : 2;
  }
  if (command === 'train' || command === 'tune') {
    const source = dataSource(values);
    const out = resolve(values.out ?? 'models');
    const epochs = (flag: string) => {
      const n = numberFlag(flag, values[flag as keyof typeof values] as string | undefined, 'count');
      return n === undefined ? {} : { epochs: n };
    };
    const settings = modelOptions(values, source);
    const seed = numberFlag('seed', values.seed, 'whole') ?? 0;
    const threads = numberFlag('threads', values.threads, 'whole') ?? 1;
    const progress = progressReporter();
    const log = (line: string) => {
      progress.stop();
      process.stderr.write(`${line}\n`);
    };
    let tuning: TrainRunOptions['tuning'];
    if (command === 'tune') {
      if (values.validation) throw new UsageError('tune: validates on its own slice; --validation is for train');
      const grid: Partial<TuneGrid> = {
        temperatures: numberList('temperatures', values.temperatures) ?? TUNE_GRID.temperatures,
        retrievalLrs: numberList('retrieval-lrs', values['retrieval-lrs']) ?? TUNE_GRID.retrievalLrs,
        rankingLrs: numberList('ranking-lrs', values['ranking-lrs']) ?? TUNE_GRID.rankingLrs,
        retrievalEpochs: numberFlag('retrieval-epochs', values['retrieval-epochs'], 'count') ?? TUNE_GRID.retrievalEpochs,
        rankingEpochs: numberFlag('ranking-epochs', values['ranking-epochs'], 'count') ?? TUNE_GRID.rankingEpochs,
      };
      process.stderr.write(`tuning on the validation slice of ${describeSource(source)}\n`);
      const chosen = await tune(source, {
        seed,
        threads,
        history: settings.preparation?.history,
        grid,
        retrieval: settings.retrieval,
        ranking: settings.ranking,
        onProgress: progress.onProgress,
        log,
      });
      const tt = chosen.twoTower!.chosen;
      const dl = chosen.dlrm!.chosen;
      settings.retrieval = {
        ...settings.retrieval,
        lr: tt.lr,
        epochs: tt.epochs,
        twoTower: { ...settings.retrieval?.twoTower, temperature: tt.temperature },
      };
      settings.ranking = { ...settings.ranking, lr: dl.lr, epochs: dl.epochs };
      tuning = { 'two-tower': { ...chosen.twoTower }, dlrm: { ...chosen.dlrm } };
      log(`tune chose: two-tower ${JSON.stringify(tt)}, dlrm ${JSON.stringify(dl)}`);
    }
    process.stderr.write(`training on ${describeSource(source)} into ${out}\n`);
    try {
      const result = await trainRun(source, {
        out,
        seed,
        threads,
        retrieval: settings.retrieval,
        ranking: settings.ranking,
        preranking: epochs('preranking-epochs'),
        preparation: settings.preparation,
        patience: settings.patience,
        negatives: settings.negatives,
        tuning,
        compareUncorrected: !values['no-baseline'],
        onProgress: progress.onProgress,
        log,
      });
      progress.stop();
      console.log(
        JSON.stringify({
          version: result.version,
          models: result.dirs,
          report: result.reportFiles.html,
          metrics: Object.fromEntries(Object.entries(result.manifests).map(([name, m]) => [name, m.metrics])),
        }),
      );
      return 0;
    } finally {
      progress.stop();
    }
  }
  if (command === 'retrain') {
    const features = values.features ?? process.env.FEATURES_ADDRESS ?? '';
    const exporting = values.since !== undefined || values.until !== undefined;
    if (exporting && values.data !== undefined) throw new UsageError('retrain: --data or --since/--until, not both');
    if (exporting && (values.since === undefined || values.until === undefined))
      throw new UsageError('retrain: --since and --until go together (the window of the event log to export)');
    const files = exporting ? undefined : dataSource(values);
    if (files !== undefined && files.kind !== 'files')
      throw new UsageError('retrain: the window is --since/--until (exported from the event log) or --data files:DIR');
    if ((exporting || values['index-dir'] !== undefined || values.qdrant !== undefined) && !/^[^\s:]+:\d{1,5}$/.test(features))
      throw new UsageError(`--features: expected HOST:PORT (or FEATURES_ADDRESS), got "${features}"`);
    const settings = modelOptions(values, files ?? { kind: 'files', dir: '' });
    if (values['index-dir'] !== undefined && values.qdrant !== undefined)
      throw new UsageError('--index-dir and --qdrant: give one, not both');
    if ((values.qdrant === undefined) !== (values.collection === undefined)) throw new UsageError('--qdrant and --collection go together');
    const indexing = values['index-dir'] !== undefined || values.qdrant !== undefined;
    const index = indexing
      ? {
          ...(values.qdrant !== undefined
            ? { qdrant: { url: values.qdrant, collection: values.collection! } }
            : { indexDir: resolve(values['index-dir']!) }),
          features,
          ...(values['index-cli'] ? { cli: resolve(values['index-cli']) } : {}),
        }
      : undefined;
    const tolerance = (flag: string) => numberFlag(flag, values[flag as keyof typeof values] as string | undefined, 'non-negative');
    const tolerances: Partial<GateTolerances> = {};
    const auc = tolerance('tolerance-auc');
    const recall = tolerance('tolerance-recall');
    if (auc !== undefined) tolerances.auc = auc;
    if (recall !== undefined) tolerances.recall = recall;
    const progress = progressReporter();
    const epochs = (flag: string) => {
      const n = numberFlag(flag, values[flag as keyof typeof values] as string | undefined, 'count');
      return n === undefined ? {} : { epochs: n };
    };
    try {
      const report = await retrain({
        root: resolve(values.models ?? 'models'),
        // The newest rows of the window are its held-out side.
        window: files
          ? { ...files, setup: { ...files.setup, split: 'time' } }
          : {
              since: values.since!,
              until: values.until!,
              features,
              ...(values['feedback-window'] ? { feedbackWindow: values['feedback-window'] } : {}),
            },
        training: {
          seed: numberFlag('seed', values.seed, 'whole') ?? 0,
          retrieval: settings.retrieval,
          ranking: settings.ranking,
          preranking: epochs('preranking-epochs'),
          preparation: settings.preparation,
          negatives: settings.negatives,
          compareUncorrected: false,
          shuffleTrainLabels: values['shuffle-labels'] === true,
          onProgress: progress.onProgress,
        },
        tolerances,
        ...(values['cold-start'] ? { coldStart: true } : {}),
        ...(index ? { index } : {}),
        ...(values.report ? { report: resolve(values.report) } : {}),
        log: (line) => {
          progress.stop();
          process.stderr.write(`${line}\n`);
        },
      });
      console.log(JSON.stringify(report));
      return 0;
    } finally {
      progress.stop();
    }
  }
  if (command === 'evaluate') {
    const result = await evaluateVersion(resolve(values.models ?? 'models'), values.version);
    const strip = <T extends object>(e: T | undefined) =>
      e ? Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'roc' && k !== 'recallCurve')) : undefined;
    console.log(
      JSON.stringify(
        {
          version: result.version,
          data: result.data.name,
          twoTower: strip(result.twoTower),
          dlrm: strip(result.dlrm),
          preranker: strip(result.preranker),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (command === 'data' && sub === 'synth') {
    if (!values.out) throw new UsageError('data synth: --out DIR is required');
    const dataset = generateSynthetic(syntheticOptions(values));
    writeDatasetFiles(dataset, resolve(values.out));
    console.log(
      JSON.stringify({
        out: resolve(values.out),
        users: dataset.users.ids.length,
        items: dataset.items.ids.length,
        interactions: dataset.interactions.length,
      }),
    );
    return 0;
  }
  if (command === 'evaluate-pipeline')
    throw new UsageError(
      'evaluate-pipeline: the funnel evaluation asks the running services, which the trainer does not talk to: ' +
        'run recsys-evaluate-pipeline (node packages/pipeline/dist/evaluate-cli.js; `recsys evaluate-pipeline` in the image)',
    );
  throw new UsageError(`unknown command "${[command, sub].filter(Boolean).join(' ')}"`);
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`${(error as Error).message}\n\n${usage}`);
      process.exitCode = 2;
    } else {
      console.error(`recsys: ${(error as Error).message}`);
      process.exitCode = 1;
    }
  },
);
