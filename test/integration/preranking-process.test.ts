import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { common, preranking } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { loadFeatures } from '@recsys/offline';
import { builtEntry, runNode, startNode, trainedModels } from '@recsys/testing';
import { startTestFeatureService } from '../harness/features';

const main = () => builtEntry('services/preranking/dist/main.js');

describe('pre-ranking service as a process', () => {
  it('exits at start-up naming the first invalid variable, or the missing model', async () => {
    const bad = await runNode(main(), [], { PRERANKING_MAX_LIMIT: '-3', GRPC_PORT: '0' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid configuration: PRERANKING_MAX_LIMIT');
    const empty = mkdtempSync(join(tmpdir(), 'recsys-no-models-'));
    const noModel = await runNode(main(), [], { MODELS_DIR: empty, GRPC_PORT: '0' });
    expect(noModel.code).toBe(1);
    expect(noModel.stderr).toContain(`no published version of preranker under ${join(empty, 'preranker')}`);
  });

  it('serves Prerank over gRPC once healthy, and stops cleanly on SIGTERM', async () => {
    const models = await trainedModels();
    const features = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL! });
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const service = startNode(main(), {
      GRPC_PORT: String(port),
      FEATURES_ADDRESS: features.service.address,
      MODELS_DIR: models.root,
      PRERANKING_DEFAULT_LIMIT: '25',
    });
    const client = createServiceClient(preranking.PrerankingService, address, { defaultTimeoutMs: 10_000 });
    try {
      await loadFeatures(features.client, models.setup);
      await waitForServing(address, 20_000);
      const itemIds = models.setup.dataset.items.ids.slice(0, 120);
      const answer = await client.prerank({
        userId: models.setup.dataset.users.ids[0]!,
        candidates: itemIds.map((itemId) => ({ itemId })),
      });
      expect(answer.modelVersion).toBe(models.version);
      expect(answer.candidates).toHaveLength(25);
      const scores = answer.candidates.map((c) => c.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(answer.candidates[0]!.stageScores.map((s) => s.stage)).toEqual([common.Stage.PRERANKING]);

      service.child.kill('SIGTERM');
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain(`preranker v${models.version} (two-tower v${models.version}) serves on cpu`);
      expect(exit.stdout).toContain('preranking service stopped');
    } finally {
      client.close();
      service.child.kill('SIGKILL');
      await features.stop();
    }
  }, 60_000);
});
