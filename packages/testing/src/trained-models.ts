import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingSetup } from '@recsys/data';
import { type DataSource, type SetupPreparation, prepareSetup, trainRun } from '@recsys/trainer';

/** Small synthetic data: every model trains in a few seconds, with real structure to learn. */
export const TEST_DATA: DataSource = { kind: 'synthetic', options: { seed: 5, users: 400, items: 200, interactionsPerUser: 30 } };

/**
 * The test models read the strong track's inputs too: the user history in the user tower and DLRM
 * (positives: what the feature service's history holds), DCN-v2 beside the dot interaction, mixed negatives.
 */
export const TEST_PREPARATION: SetupPreparation = { history: { tower: 10, ranking: 10, rankingItems: 'positive' } };

export interface TrainedModels {
  /** Model root: <root>/{two-tower,dlrm,preranker}/<version>/. */
  root: string;
  version: string;
  source: DataSource;
  /** The setup the models were trained on (user history columns included). */
  setup: TrainingSetup;
}

const RUN_PREFIX = 'recsys-test-models-';
const POLL_MS = 200;
const WAIT_MS = 180_000;

/** Where this test run keeps its models: one directory per jest run (set by the global setup), else per process. */
function runDir(): string {
  return join(tmpdir(), `${RUN_PREFIX}${process.env.RECSYS_TEST_RUN ?? `p${process.pid}`}`);
}

let cached: Promise<TrainedModels> | undefined;

/**
 * Real models from the trainer on TEST_DATA, trained once per test run and shared by every test file
 * and worker: the first caller trains under a directory lock, the others wait for it.
 */
export function trainedModels(): Promise<TrainedModels> {
  cached ??= train();
  return cached;
}

async function train(): Promise<TrainedModels> {
  const root = join(runDir(), 'models');
  const ready = join(runDir(), 'READY');
  const lock = join(`${runDir()}.lock`);
  let owner = false;
  try {
    mkdirSync(lock, { recursive: false });
    owner = true;
  } catch {
    // Another worker trains; wait for it below.
  }
  if (owner && !existsSync(ready)) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    await trainRun(TEST_DATA, {
      out: root,
      seed: 1,
      retrieval: { epochs: 3, batchSize: 128, sampledNegatives: 64 },
      ranking: { epochs: 1, dlrm: { interaction: 'dotdcn' } },
      preparation: TEST_PREPARATION,
      preranking: { epochs: 1 },
      compareUncorrected: false,
    });
    writeFileSync(ready, '1');
  }
  const started = Date.now();
  while (!existsSync(ready)) {
    if (Date.now() - started > WAIT_MS) throw new Error(`trainedModels: gave up waiting for ${ready}`);
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
  return { root, version: '1', source: TEST_DATA, setup: prepareSetup(TEST_DATA, TEST_PREPARATION).setup };
}

/** Removes the models of a test run (the global teardown calls it). */
export function removeTrainedModels(run: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (name === `${RUN_PREFIX}${run}` || name === `${RUN_PREFIX}${run}.lock`)
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}
