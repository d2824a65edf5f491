import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ranking } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { loadFeatures } from '@recsys/offline';
import { builtEntry, runNode, startNode, trainedModels } from '@recsys/testing';
import { startTestFeatureService } from '../harness/features';

const main = () => builtEntry('services/ranking/dist/main.js');

describe('ranking service as a process', () => {
  it('exits at start-up naming the first invalid variable, or the missing model', async () => {
    const bad = await runNode(main(), [], { RANKING_MAX_BATCH_SIZE: 'lots', GRPC_PORT: '0' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid configuration: RANKING_MAX_BATCH_SIZE');
    const providers = await runNode(main(), [], { RANKING_EXECUTION_PROVIDERS: 'tpu', GRPC_PORT: '0' });
    expect(providers.code).toBe(2);
    expect(providers.stderr).toContain('invalid configuration: RANKING_EXECUTION_PROVIDERS: unknown provider "tpu"');
    const empty = mkdtempSync(join(tmpdir(), 'recsys-no-models-'));
    const noModel = await runNode(main(), [], { MODELS_DIR: empty, GRPC_PORT: '0' });
    expect(noModel.code).toBe(1);
    expect(noModel.stderr).toContain(`no published version of dlrm under ${join(empty, 'dlrm')}`);
  });

  it('serves Rank and GetModelInfo over gRPC once healthy, and stops cleanly on SIGTERM', async () => {
    const models = await trainedModels();
    const features = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL! });
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const service = startNode(main(), { GRPC_PORT: String(port), FEATURES_ADDRESS: features.service.address, MODELS_DIR: models.root });
    const client = createServiceClient(ranking.RankingService, address, { defaultTimeoutMs: 10_000 });
    try {
      await loadFeatures(features.client, models.setup);
      await waitForServing(address, 20_000);
      const info = await client.getModelInfo({});
      expect(info).toMatchObject({ modelName: 'dlrm', modelVersion: models.version, executionProvider: 'cpu', maxBatchSize: 2048 });
      const itemIds = models.setup.dataset.items.ids.slice(0, 50);
      const answer = await client.rank({
        userId: models.setup.dataset.users.ids[0]!,
        candidates: itemIds.map((itemId) => ({ itemId })),
        limit: 10,
      });
      expect(answer.modelVersion).toBe(models.version);
      expect(answer.missingItemIds).toEqual([]);
      expect(answer.candidates).toHaveLength(10);
      const scores = answer.candidates.map((c) => c.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));

      service.child.kill('SIGTERM');
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain(`dlrm v${models.version} serves on cpu`);
      expect(exit.stdout).toContain('ranking service stopped');
    } finally {
      client.close();
      service.child.kill('SIGKILL');
      await features.stop();
    }
  }, 60_000);
});

// The benchmark's output contract on a tiny run (the test models, a few requests); no timing is asserted.
describe('bench:ranking', () => {
  it('ends with one JSON line holding the contracted figures', async () => {
    const models = await trainedModels();
    const result = await runNode(
      builtEntry('test/dist/bench/ranking.bench.js'),
      [],
      {
        BENCH_MODELS_DIR: models.root,
        BENCH_CANDIDATES: '40',
        BENCH_REQUESTS: '32',
        BENCH_ROUNDS: '1',
        BENCH_CATALOGUE: '500',
        // The ranking services' item reads (inherited): the 300 ms default was once passed by a read on a CI machine
        // busy with the other test files (DEADLINE_EXCEEDED failed the run); this test checks the output, not speed.
        FEATURES_TIMEOUT_MS: '5000',
      },
      90_000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, number | boolean>;
    const keys = ['bare_items_per_s', 'ratio_c32'];
    for (const n of [1, 8, 32]) keys.push(`items_per_s_c${n}`, `p99_ms_c${n}`, `items_per_s_c${n}_unbatched`);
    for (const key of keys) {
      expect({ key, finite: Number.isFinite(figures[key]) }).toEqual({ key, finite: true });
      expect(figures[key]).toBeGreaterThan(0);
    }
    expect(figures.ratio_c32).toBeCloseTo((figures.items_per_s_c32 as number) / (figures.bare_items_per_s as number), 2);
    // The default configuration caches items; 500 catalogue items (200 trained, 300 copies) against ~100 requests of 40.
    expect(figures).toMatchObject({ item_cache: true, catalogue_items: 500 });
    expect(figures.item_cache_hit_rate).toBeGreaterThan(0);
    expect(figures.item_cache_hit_rate).toBeLessThanOrEqual(1);
  }, 120_000);
});
