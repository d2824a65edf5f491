// The feedback loop on small data, through the real services: simulated users (whose clicks follow the synthetic world's
// planted tastes) call the gateway over REST and send clicks and purchases back with the request id; the gateway logs
// every answer and the feature service every feedback event (the event log on Redis); the gate exports the window from
// the log, retrains on it, publishes, the services hot-reload (the index is rebuilt), and the next round's CTR@10 is
// measured on the new version. A candidate fitted on shuffled labels must be refused.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthetic, writeDatasetFiles } from '@recsys/data';
import { startPipeline, type RunningPipeline } from '@recsys/pipeline';
import { SimulatedWorld, type LoopResult, runLoop } from '@recsys/simulator';
import { trainRun } from '@recsys/trainer';
import { waitForServing } from '../harness/serving-versions';

const API_KEY = randomBytes(16).toString('hex');
// The world and a cold start: the first version sees 3 impressions per user of it.
const WORLD = { seed: 5, users: 300, items: 150 };
const DAY = 86_400;
const BASE_START = 1_735_689_600;

describe('the feedback loop on small data: simulate -> retrain -> publish raises CTR@10', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'recsys-loop-'));
  let pipeline: RunningPipeline;
  let result: LoopResult;

  beforeAll(async () => {
    const base = generateSynthetic({ ...WORLD, interactionsPerUser: 3, startTime: BASE_START });
    const baseDir = join(tmp, 'base');
    writeDatasetFiles(base, baseDir);
    const models = join(tmp, 'models');
    // Small data: small batches, so every model takes a few hundred steps.
    const training = {
      retrieval: { epochs: 6, batchSize: 64 },
      ranking: { epochs: 6, batchSize: 64 },
      preranking: { epochs: 6, batchSize: 64 },
    };
    await trainRun(
      { kind: 'files', dir: baseDir, setup: { split: 'time' } },
      { out: models, seed: 1, compareUncorrected: false, ...training },
    );
    pipeline = await startPipeline({
      workDir: join(tmp, 'work'),
      modelsDir: models,
      redisUrl: process.env.REDIS_TEST_URL,
      ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
      env: {
        features: { REDIS_KEY_PREFIX: `loop-${randomUUID().slice(0, 8)}:` },
        gateway: { API_KEYS: `loop:${API_KEY}`, BUDGET_DEFAULT_MS: '3000', BUDGET_MAX_MS: '5000' },
      },
    });
    const probe = { userId: base.users.ids[0]!, itemId: base.items.ids[0]! };
    result = await runLoop({
      gateway: pipeline.httpUrl,
      apiKey: API_KEY,
      world: SimulatedWorld.create({ ...WORLD, interactionsPerUser: 0 }),
      base,
      models,
      windowDir: join(tmp, 'window'),
      index: { indexDir: pipeline.indexDir, features: pipeline.addresses.features },
      exportWindow: { features: pipeline.addresses.features, feedbackWindowMs: 1000 },
      rounds: 1,
      requestsPerRound: 300,
      seed: 1,
      startTime: BASE_START + 31 * DAY,
      training,
      waitForServing: (version) => waitForServing(pipeline, version, probe),
      checkBrokenCandidate: true,
      log: (line) => void (process.env.LOOP_LOG ? process.stderr.write(`${line}\n`) : undefined),
    });
  }, 420_000);
  afterAll(async () => {
    await pipeline?.close();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('publishes the retrained version and serves it', () => {
    // What the gate decides from is checked first, so a failure names its cause.
    for (const r of result.rounds) {
      expect(r.simulation.failedRequests).toBe(0);
      expect(r.simulation.impressions).toBe(300 * 10);
      // Every click went back as feedback with its request id, and every purchase after a click.
      expect(r.simulation.feedbackAccepted).toBe(r.simulation.clicks + r.simulation.purchases);
    }
    // Each retrain read its window from the event log: every answer served since the loop started, labelled.
    const first = result.rounds[0]!.export!;
    expect(first.impressions).toBe(300);
    expect(first.positives + first.negatives).toBeGreaterThanOrEqual(0.95 * 300 * 10);
    expect(first.positives).toBe(result.rounds[0]!.simulation.clicks);
    // The gate's reasons (each metric it refused on, with both versions' values) are in the message when it refuses.
    const gate = result.rounds[0]!.retrain!;
    expect(`${gate.decision}: ${gate.reasons.join('; ')}`).toMatch(/^published: /);
    expect(result.rounds.map((r) => r.served)).toEqual(['1', '2']);
  });

  it('raises the simulated CTR@10 of the served version over the first one', () => {
    const ctr = result.ctrByRound;
    expect(ctr[ctr.length - 1]!).toBeGreaterThan(ctr[0]!);
  });

  it('refuses a candidate trained on shuffled labels and keeps the serving version', () => {
    expect(result.broken!.decision).toBe('kept');
    expect(result.broken!.servingAfter).toBe('2');
    expect(result.broken!.reasons.join('\n')).toMatch(/auc .* < serving/);
  });
});
