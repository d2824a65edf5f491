// ../shared/datasets/PROTOCOL.md on MovieLens 100K: the project's trainer and the PyTorch reference
// (../shared/reference/torch_ml100k.py) in one run, over the same seeds, each side using the whole
// machine in turn. Quality figures are means over the seeds. Last line: one JSON object.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ml100kProtocol, type TrainingSetup } from '@recsys/data';
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
} from '@recsys/trainer';
import { round } from './stats';

const DATA = resolve(repoRoot, process.env.ML100K_DIR ?? '../shared/datasets/ml-100k');
const REFERENCE = resolve(repoRoot, process.env.REFERENCE_SCRIPT ?? '../shared/reference/torch_ml100k.py');
const PYTHON = process.env.REFERENCE_PYTHON ?? '/usr/bin/python3';
const SEEDS = (process.env.BENCH_SEEDS ?? '0,1,2').split(',').map(Number);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);

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
  if (probe.status !== 0 || !existsSync(REFERENCE)) {
    console.error(
      `bench:train needs the PyTorch reference: ${REFERENCE} run by ${PYTHON} with torch and sklearn ` +
        `(apt-get install -y python3-torch python3-sklearn, or: bash scripts/setup.sh --reference)`,
    );
    process.exitCode = 1;
    return;
  }
  const setup = ml100kProtocol(DATA);
  const mine: Figures[] = [];
  const ref: Figures[] = [];
  for (const seed of SEEDS) {
    mine.push(await ours(setup, seed));
    ref.push(theirs(seed));
    const [m, r] = [mine.at(-1)!, ref.at(-1)!];
    console.log(
      `seed ${seed}: auc ${round(m.auc!, 4)} (ref ${r.auc}), recall@10 ${round(m['recall@10']!, 4)} (ref ${r['recall@10']}), ` +
        `dlrm ${Math.round(m.examples_per_s!)} ex/s (ref ${r.examples_per_s}), two-tower ${Math.round(m.tt_examples_per_s!)} ex/s (ref ${r.tt_examples_per_s})`,
    );
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
  figures.auc_diff = round(figures.auc! - figures.ref_auc!, 4);
  figures['recall@10_ratio'] = round(figures['recall@10']! / figures['ref_recall@10']!, 3);
  figures['recall@100_ratio'] = round(figures['recall@100']! / figures['ref_recall@100']!, 3);
  figures.examples_per_s_ratio = round(figures.examples_per_s! / figures.ref_examples_per_s!, 2);
  figures.tt_examples_per_s_ratio = round(figures.tt_examples_per_s! / figures.ref_tt_examples_per_s!, 2);
  figures.seeds = SEEDS.length;
  // Peak resident memory of this process (the trainer side; the reference runs as child processes).
  figures.max_rss_mib = round(process.resourceUsage().maxRSS / 1024, 1);
  console.log(JSON.stringify(figures));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
