// ../shared/datasets/PROTOCOL.md on MovieLens 100K: the project's trainer and the PyTorch reference
// (../shared/reference/torch_ml100k.py) in one run, over the same seeds, each side using the whole
// machine in turn; then the strong track: the trainer's strong settings (user history, mixed negatives,
// DCN-v2) against ../shared/reference/torch_ml100k_strong.py with its documented settings, same seeds.
// Quality figures are means over the seeds. Last line: one JSON object.
// BENCH_TRACKS=plain or =strong runs one track (both by default); BENCH_SEEDS=0 one seed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ml100kProtocol, withUserHistory, type TrainingSetup } from '@recsys/data';
import { repoRoot } from '@recsys/testing';
import {
  OrtRunner,
  evaluateDlrm,
  evaluateRetrieval,
  toOnnxModel,
  trainedTowerVectors,
  trainDlrm,
  trainTwoTower,
  RANKING_DEFAULTS,
  RETRIEVAL_DEFAULTS,
  STRONG_HISTORY,
  STRONG_RANKING,
  STRONG_RETRIEVAL,
  positiveTrainRows,
  splitRows,
} from '@recsys/trainer';
import { round } from './stats';
import { envNumber } from '../harness/script-env';

const DATA = resolve(repoRoot, process.env.ML100K_DIR ?? '../shared/datasets/ml-100k');
const REFERENCE = resolve(repoRoot, process.env.REFERENCE_SCRIPT ?? '../shared/reference/torch_ml100k.py');
const PYTHON = process.env.REFERENCE_PYTHON ?? '/usr/bin/python3';
const SEEDS = (process.env.BENCH_SEEDS ?? '0,1,2').split(',').map(Number);
const THREADS = envNumber('BENCH_THREADS', 1);
const STRONG_REFERENCE = resolve(repoRoot, process.env.REFERENCE_STRONG_SCRIPT ?? '../shared/reference/torch_ml100k_strong.py');
const TRACKS = new Set((process.env.BENCH_TRACKS ?? 'plain,strong').split(','));
// PROTOCOL.md's documented best settings of the strong reference.
const REF_STRONG_TT = ['--task', 'tt', '--mns', '512', '--hist', '1', '--side', '--temperature', '0.2', '--lr', '0.01', '--epochs', '10'];
const REF_STRONG_CTR = ['--task', 'ctr', '--hist', 'mean', '--inter', 'dotdcn', '--lr', '0.003', '--epochs', '3'];

type Figures = Record<string, number>;

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function reference(task: 'ctr' | 'retrieval', seed: number, extra: string[] = []): Figures {
  const out = execFileSync(PYTHON, [REFERENCE, '--data', DATA, '--task', task, '--threads', '2', '--seed', String(seed), ...extra], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Figures;
}

async function ours(setup: TrainingSetup, seed: number): Promise<Figures> {
  const dlrm = await trainDlrm(setup, { ...RANKING_DEFAULTS, seed, threads: THREADS });
  const runner = await OrtRunner.create(
    toOnnxModel({ name: 'dlrm', outputs: { probability: dlrm.model.probability }, params: 'initializer' }),
  );
  const ranking = await evaluateDlrm(setup, runner, setup.ranking, dlrm.sources).finally(() => runner.release());
  const retrieval = async (correction: boolean) => {
    const trained = await trainTwoTower(setup, { ...RETRIEVAL_DEFAULTS, seed, correction, threads: THREADS });
    const vectors = await trainedTowerVectors(setup, trained.model);
    return { recall: (await evaluateRetrieval(setup, vectors)).recall, examplesPerS: trained.loop.examplesPerS };
  };
  const corrected = await retrieval(true);
  const plain = await retrieval(false);
  return {
    auc: ranking.auc,
    logloss: ranking.logloss,
    f1: ranking.f1,
    examples_per_s: dlrm.loop.examplesPerS,
    'recall@10': corrected.recall['recall@10']!,
    'recall@50': corrected.recall['recall@50']!,
    'recall@100': corrected.recall['recall@100']!,
    'recall@10_uncorrected': plain.recall['recall@10']!,
    'recall@50_uncorrected': plain.recall['recall@50']!,
    'recall@100_uncorrected': plain.recall['recall@100']!,
    tt_examples_per_s: corrected.examplesPerS,
  };
}

/** The strong track, trainer side: the strong settings (stronger defaults the CLI's --strong also uses). */
async function oursStrong(richer: TrainingSetup, seed: number): Promise<Figures> {
  const setup = withUserHistory(richer, STRONG_HISTORY);
  const dlrm = await trainDlrm(setup, { ...STRONG_RANKING, seed, threads: THREADS });
  const runner = await OrtRunner.create(
    toOnnxModel({ name: 'dlrm', outputs: { probability: dlrm.model.probability }, params: 'initializer' }),
  );
  const ranking = await evaluateDlrm(setup, runner, setup.ranking, dlrm.sources).finally(() => runner.release());
  const trained = await trainTwoTower(setup, { ...STRONG_RETRIEVAL, seed, threads: THREADS });
  const { recall } = await evaluateRetrieval(setup, await trainedTowerVectors(setup, trained.model));
  return {
    'strong_recall@10': recall['recall@10']!,
    'strong_recall@50': recall['recall@50']!,
    'strong_recall@100': recall['recall@100']!,
    strong_auc: ranking.auc,
    strong_logloss: ranking.logloss,
    strong_f1: ranking.f1,
    strong_examples_per_s: (dlrm.loop.examples + trained.loop.examples) / (dlrm.loop.seconds + trained.loop.seconds),
    strong_dlrm_examples_per_s: dlrm.loop.examplesPerS,
    strong_tt_examples_per_s: trained.loop.examplesPerS,
  };
}

/** The strong reference: train_secs is its training loop's time; examples are its fitted rows times epochs. */
function theirsStrong(setup: TrainingSetup, seed: number): Figures {
  const run = (args: string[]) => {
    const out = execFileSync(PYTHON, [STRONG_REFERENCE, '--data', DATA, '--threads', '2', '--seed', String(seed), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as Figures;
  };
  const epochsOf = (args: string[]) => Number(args[args.indexOf('--epochs') + 1]);
  const ctr = run(REF_STRONG_CTR);
  const tt = run(REF_STRONG_TT);
  const ctrExamples = splitRows(setup, true).length * epochsOf(REF_STRONG_CTR);
  const ttExamples = positiveTrainRows(setup).length * epochsOf(REF_STRONG_TT);
  return {
    'strong_recall@10': tt['recall@10']!,
    'strong_recall@50': tt['recall@50']!,
    'strong_recall@100': tt['recall@100']!,
    strong_auc: ctr.auc!,
    strong_logloss: ctr.logloss!,
    strong_f1: ctr.f1!,
    strong_examples_per_s: (ctrExamples + ttExamples) / (ctr.train_secs! + tt.train_secs!),
    strong_dlrm_examples_per_s: ctrExamples / ctr.train_secs!,
    strong_tt_examples_per_s: ttExamples / tt.train_secs!,
  };
}

function theirs(seed: number): Figures {
  const ctr = reference('ctr', seed);
  const tt = reference('retrieval', seed);
  const plain = reference('retrieval', seed, ['--no-correction']);
  return {
    auc: ctr.auc!,
    logloss: ctr.logloss!,
    f1: ctr.f1!,
    examples_per_s: ctr.train_examples_per_s!,
    'recall@10': tt['recall@10']!,
    'recall@50': tt['recall@50']!,
    'recall@100': tt['recall@100']!,
    'recall@10_uncorrected': plain['recall@10']!,
    'recall@50_uncorrected': plain['recall@50']!,
    'recall@100_uncorrected': plain['recall@100']!,
    tt_examples_per_s: tt.train_examples_per_s!,
  };
}

async function main(): Promise<void> {
  if (!existsSync(resolve(DATA, 'u.data'))) {
    console.log(`bench:train skipped: MovieLens 100K is not at ${DATA} (set ML100K_DIR)`);
    console.log(JSON.stringify({ skipped: true, reason: `no ML-100K at ${DATA}` }));
    return;
  }
  const probe = spawnSync(PYTHON, ['-c', 'import torch, sklearn'], { encoding: 'utf8' });
  if (probe.status !== 0 || !existsSync(REFERENCE) || (TRACKS.has('strong') && !existsSync(STRONG_REFERENCE))) {
    console.error(
      `bench:train needs the PyTorch reference: ${REFERENCE} run by ${PYTHON} with torch and sklearn ` +
        `(apt-get install -y python3-torch python3-sklearn, or: bash scripts/setup.sh --reference)`,
    );
    process.exitCode = 1;
    return;
  }
  const setup = ml100kProtocol(DATA);
  // The strong track's item tower also reads every genre and the exact release year (as the reference's --side).
  const richer = TRACKS.has('strong') ? ml100kProtocol(DATA, { itemSide: true }) : setup;
  const mine: Figures[] = [];
  const ref: Figures[] = [];
  for (const seed of SEEDS) {
    const m: Figures = {};
    const r: Figures = {};
    // Each side's figures are printed as soon as they are in, so a run cut short still shows them.
    const show = (label: string, figures: Figures) =>
      console.log(
        `seed ${seed} ${label}: ${JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v, 4)])))}`,
      );
    if (TRACKS.has('plain')) {
      Object.assign(m, await ours(setup, seed));
      show('plain, trainer', m);
      Object.assign(r, theirs(seed));
      console.log(
        `seed ${seed}: auc ${round(m.auc!, 4)} (ref ${r.auc}), recall@10 ${round(m['recall@10']!, 4)} (ref ${r['recall@10']}), ` +
          `dlrm ${Math.round(m.examples_per_s!)} ex/s (ref ${r.examples_per_s}), two-tower ${Math.round(m.tt_examples_per_s!)} ex/s (ref ${r.tt_examples_per_s})`,
      );
    }
    if (TRACKS.has('strong')) {
      const strong = await oursStrong(richer, seed);
      Object.assign(m, strong);
      show('strong, trainer', strong);
      Object.assign(r, theirsStrong(setup, seed));
      console.log(
        `seed ${seed} strong: auc ${round(m.strong_auc!, 4)} (ref ${r.strong_auc}), recall@10/50/100 ${round(m['strong_recall@10']!, 4)}/` +
          `${round(m['strong_recall@50']!, 4)}/${round(m['strong_recall@100']!, 4)} (ref ${r['strong_recall@10']}/${r['strong_recall@50']}/` +
          `${r['strong_recall@100']}), ${Math.round(m.strong_examples_per_s!)} ex/s (ref ${Math.round(r.strong_examples_per_s!)})`,
      );
    }
    mine.push(m);
    ref.push(r);
  }
  const avg = (rows: Figures[], key: string) => mean(rows.map((r) => r[key]!));
  const keys = Object.keys(mine[0]!);
  console.log(`\n${'figure'.padEnd(24)}${'trainer'.padStart(12)}${'reference'.padStart(12)}${'ratio'.padStart(9)}`);
  for (const key of keys) {
    const [a, b] = [avg(mine, key), avg(ref, key)];
    const digits = key.includes('per_s') ? 0 : 4;
    console.log(
      `${key.padEnd(24)}${String(round(a, digits)).padStart(12)}${String(round(b, digits)).padStart(12)}${round(a / b, 3)
        .toFixed(3)
        .padStart(9)}`,
    );
  }
  const figures: Figures = {};
  for (const key of keys) {
    const digits = key.includes('per_s') ? 0 : 4;
    figures[key] = round(avg(mine, key), digits);
    figures[`ref_${key}`] = round(avg(ref, key), digits);
  }
  if (TRACKS.has('plain')) {
    figures.auc_diff = round(figures.auc! - figures.ref_auc!, 4);
    figures['recall@10_ratio'] = round(figures['recall@10']! / figures['ref_recall@10']!, 3);
    figures['recall@100_ratio'] = round(figures['recall@100']! / figures['ref_recall@100']!, 3);
    figures.examples_per_s_ratio = round(figures.examples_per_s! / figures.ref_examples_per_s!, 2);
    figures.tt_examples_per_s_ratio = round(figures.tt_examples_per_s! / figures.ref_tt_examples_per_s!, 2);
  }
  if (TRACKS.has('strong')) {
    figures.strong_auc_diff = round(figures.strong_auc! - figures.ref_strong_auc!, 4);
    figures['strong_recall@10_ratio'] = round(figures['strong_recall@10']! / figures['ref_strong_recall@10']!, 3);
    figures['strong_recall@100_ratio'] = round(figures['strong_recall@100']! / figures['ref_strong_recall@100']!, 3);
    figures.strong_examples_per_s_ratio = round(figures.strong_examples_per_s! / figures.ref_strong_examples_per_s!, 2);
  }
  figures.seeds = SEEDS.length;
  // Peak resident memory of this process (the trainer side; the reference runs as child processes).
  figures.max_rss_mib = round(process.resourceUsage().maxRSS / 1024, 1);
  console.log(JSON.stringify(figures));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
