// The feedback loop on the default synthetic data (recsys train's: seed 42, 2,000 users, 1,000 items): the first version
// is trained on a cold start (BENCH_BASE_INTERACTIONS impressions per user of the world), the pipeline runs on a real
// redis-server (every service its own process, the event log on), then BENCH_ROUNDS rounds of simulate -> retrain ->
// publish: BENCH_REQUESTS simulated requests per round through the gateway's REST API (users whose clicks follow the
// world's planted tastes, clicks and purchases sent back with the request id), the window exported from the event log,
// the gate, the index build and hot reload; one more simulated round measures the last version. Then a candidate fitted
// on shuffled labels goes to the gate. Prints CTR@10 of each served version and the gate's decisions; the baselines,
// measured in the same run with the same simulated users: CTR@10 of random items and of the ground-truth oracle.
// The last line is one JSON object.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthetic, writeDatasetFiles } from '@recsys/data';
import { startPipeline, type RunningPipeline } from '@recsys/pipeline';
import { SimulatedWorld, offlineCtr, runLoop } from '@recsys/simulator';
import { RedisServer } from '@recsys/testing';
import { DEFAULT_SYNTHETIC, trainRun } from '@recsys/trainer';
import { waitForServing } from '../harness/serving-versions';
import { eventLogCost } from './event-log-cost';
import { round } from './stats';
import { envNumber } from '../harness/script-env';

const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const REQUESTS = envNumber('BENCH_REQUESTS', 2000);
const BASE_INTERACTIONS = envNumber('BENCH_BASE_INTERACTIONS', 5);
const K = 10;
const DAY = 86_400;
const START = 1_735_689_600;
const TRAINING = {
  retrieval: { epochs: 5, batchSize: 128 },
  ranking: { epochs: 4, batchSize: 128 },
  preranking: { epochs: 4, batchSize: 128 },
};

async function main(): Promise<void> {
  const started = performance.now();
  const world = { seed: DEFAULT_SYNTHETIC.seed, users: DEFAULT_SYNTHETIC.users, items: DEFAULT_SYNTHETIC.items };
  const tmp = mkdtempSync(join(tmpdir(), 'recsys-bench-loop-'));
  const redis = await RedisServer.start();
  let pipeline: RunningPipeline | undefined;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const base = generateSynthetic({ ...world, interactionsPerUser: BASE_INTERACTIONS, startTime: START });
    writeDatasetFiles(base, join(tmp, 'base'));
    const models = join(tmp, 'models');
    log(`training the first version on a cold start: ${base.interactions.length} impressions of ${world.users} users`);
    await trainRun(
      { kind: 'files', dir: join(tmp, 'base'), setup: { split: 'time' } },
      { out: models, seed: 1, compareUncorrected: false, ...TRAINING },
    );
    const apiKey = randomBytes(16).toString('hex');
    pipeline = await startPipeline({
      workDir: join(tmp, 'work'),
      modelsDir: models,
      redisUrl: redis.url,
      metrics: true,
      ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
      env: { gateway: { API_KEYS: `bench:${apiKey}`, BUDGET_DEFAULT_MS: '3000', BUDGET_MAX_MS: '5000' } },
      log,
    });
    const running = pipeline;
    const simulated = SimulatedWorld.create({ ...world, interactionsPerUser: 0 });
    const probe = { userId: base.users.ids[0]!, itemId: base.items.ids[0]! };
    const loop = await runLoop({
      gateway: running.httpUrl,
      apiKey,
      world: simulated,
      base,
      models,
      windowDir: join(tmp, 'windows'),
      index: { indexDir: running.indexDir, features: running.addresses.features },
      exportWindow: { features: running.addresses.features, feedbackWindowMs: 1000 },
      rounds: ROUNDS,
      requestsPerRound: REQUESTS,
      seed: 1,
      startTime: START + 31 * DAY,
      training: TRAINING,
      waitForServing: (version) => waitForServing(running, version, probe, 120_000),
      checkBrokenCandidate: true,
      log,
    });
    // Baselines with the same simulated users and reactions, no gateway: random items (the floor), the oracle (the ceiling).
    const items = simulated.dataset.items.ids.length;
    const randomCtr = offlineCtr(simulated, REQUESTS, 1000, (_user, random) => Array.from(random.permutation(items).subarray(0, K)));
    const oracleCtr = offlineCtr(simulated, REQUESTS, 1000, (user) => simulated.oracle(user, K));
    const ctr = loop.ctrByRound;
    console.log('\nround  served version  CTR@10  conversion  gate after the round');
    for (const r of loop.rounds) {
      const gate = r.retrain
        ? `${r.retrain.decision} ${r.retrain.candidate.version}: ${r.retrain.reasons.join('; ')}`
        : '(last: measured only)';
      console.log(
        `${String(r.round).padEnd(7)}${r.served.padEnd(16)}${r.simulation.ctrAtK.toFixed(4).padEnd(8)}${r.simulation.conversion.toFixed(4).padEnd(12)}${gate}`,
      );
    }
    console.log(`broken candidate (shuffled labels): ${loop.broken!.decision}: ${loop.broken!.reasons.join('; ')}`);
    console.log(`baselines: random items CTR@10 ${randomCtr.toFixed(4)}, oracle CTR@10 ${oracleCtr.toFixed(4)}`);
    const cost = await eventLogCost(running.metricsUrl('gateway')!);
    const lastExport = [...loop.rounds].reverse().find((r) => r.export)?.export;
    const result = {
      bench: 'loop',
      rounds: ROUNDS,
      requests_per_round: REQUESTS,
      'ctr@10_by_round': ctr.map((c) => round(c, 4)),
      served_versions: loop.rounds.map((r) => r.served),
      gate_decisions: loop.rounds.filter((r) => r.retrain).map((r) => r.retrain!.decision),
      ctr_lift: round(ctr[ctr.length - 1]! / ctr[0]!, 4),
      gate_refused_broken: loop.broken!.decision === 'kept',
      // The gateway's cost of logging an answer on its path, and the answers it logged (test/bench/event-log-cost.ts).
      ...cost,
      // Entries (answers and feedback events) the last export read from the log.
      log_entries_exported: lastExport?.log_entries ?? null,
      'baseline_random_ctr@10': round(randomCtr, 4),
      'baseline_oracle_ctr@10': round(oracleCtr, 4),
      data: { ...world, base_interactions_per_user: BASE_INTERACTIONS },
      seconds: round((performance.now() - started) / 1000, 1),
    };
    console.log(JSON.stringify(result));
  } finally {
    await pipeline?.close();
    await redis.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
