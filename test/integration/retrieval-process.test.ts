import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { features, retrieval } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { loadFeatures } from '@recsys/offline';
import { builtEntry, runNode, startNode, trainedModels } from '@recsys/testing';

const main = () => builtEntry('services/retrieval/dist/main.js');
const cli = () => builtEntry('services/retrieval/dist/index-cli.js');

describe('retrieval service and recsys-index as processes', () => {
  let indexDir: string;
  beforeAll(() => {
    indexDir = mkdtempSync(join(tmpdir(), 'recsys-index-process-'));
  });
  afterAll(() => rmSync(indexDir, { recursive: true, force: true }));

  it('exits at start-up naming the first invalid variable, and with 1 when there is no index to serve', async () => {
    const models = await trainedModels();
    const quotas = await runNode(main(), [], {
      GRPC_PORT: '0',
      MODELS_DIR: models.root,
      INDEX_DIR: indexDir,
      CHANNEL_QUOTAS: 'trending=5',
    });
    expect(quotas.code).toBe(2);
    expect(quotas.stderr).toContain('invalid configuration: CHANNEL_QUOTAS: "trending=5": channels are two_tower, popular, item_to_item');
    const models_ = await runNode(main(), [], { GRPC_PORT: '0', INDEX_DIR: indexDir });
    expect(models_.code).toBe(2);
    expect(models_.stderr).toContain('invalid configuration: MODELS_DIR');
    const empty = await runNode(main(), [], {
      GRPC_PORT: '0',
      MODELS_DIR: models.root,
      INDEX_DIR: join(indexDir, 'nothing-here'),
      LOG_LEVEL: 'silent',
    });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('no index version under');
  });

  it('recsys-index names a bad flag (exit 2) and explains a failed build (exit 1)', async () => {
    const models = await trainedModels();
    const noModels = await runNode(cli(), ['build', '--index-dir', indexDir]);
    expect(noModels.code).toBe(2);
    expect(noModels.stderr).toContain('--models: required');
    const noTarget = await runNode(cli(), ['build', '--models', models.root]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('--index-dir or --qdrant: one is required');
    const batch = await runNode(cli(), ['build', '--models', models.root, '--index-dir', indexDir, '--batch', 'many']);
    expect(batch.code).toBe(2);
    expect(batch.stderr).toContain('--batch: expected a whole number');
    const unknown = await runNode(cli(), ['build', '--models', models.root, '--index-dir', indexDir, '--shards', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--shards'");
    const missing = await runNode(cli(), ['build', '--models', models.root, '--version', '99', '--index-dir', indexDir, '--no-payload']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('build failed');
    expect(missing.stderr).toContain('two-tower');
    const port = await freePort();
    const down = await runNode(cli(), ['build', '--models', models.root, '--index-dir', indexDir, '--features', `127.0.0.1:${port}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`reading item payload from the feature service at 127.0.0.1:${port} failed`);
  });

  it('serves Retrieve over gRPC from an index the CLI built, takes up a new version, stops cleanly on SIGTERM', async () => {
    const models = await trainedModels();
    const featuresPort = await freePort();
    const featuresAddress = `127.0.0.1:${featuresPort}`;
    const featureProcess = startNode(builtEntry('services/features/dist/main.js'), {
      GRPC_PORT: String(featuresPort),
      REDIS_URL: process.env.REDIS_TEST_URL!,
      REDIS_KEY_PREFIX: `rp${randomUUID().slice(0, 8)}:`,
      LOG_LEVEL: 'warn',
    });
    const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 10_000 });
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    let service: ReturnType<typeof startNode> | undefined;
    const client = createServiceClient(retrieval.RetrievalService, address, { defaultTimeoutMs: 15_000 });
    try {
      await waitForServing(featuresAddress, 15_000);
      await loadFeatures(featureClient, models.setup);
      const root = join(indexDir, 'served');
      const built = await runNode(cli(), ['build', '--models', models.root, '--index-dir', root, '--features', featuresAddress]);
      expect(built.stderr).toBe('');
      expect(built.code).toBe(0);
      expect(built.stdout).toContain(`index version 1 published to ${root}: ${models.setup.dataset.items.ids.length} items`);
      expect(built.stdout).toContain(`two-tower ${models.version}`);

      service = startNode(main(), {
        GRPC_PORT: String(port),
        MODELS_DIR: models.root,
        INDEX_DIR: root,
        FEATURES_ADDRESS: featuresAddress,
        INDEX_POLL_MS: '100',
        // Each version opens with a search thread: start-up, the swap and the shutdown with one (this catalogue is small
        // enough to be scanned exactly; the store's specs and bench:pipeline's all-in-one mode search on the thread).
        INDEX_SEARCH_WORKERS: '1',
        // Loose enough for a loaded machine, short enough for the frozen feature service below.
        FEATURES_TIMEOUT_MS: '1500',
        CHANNEL_TIMEOUT_MS: '1000',
      });
      await waitForServing(address, 20_000);
      const userId = models.setup.dataset.users.ids[3]!;
      const history = new Set((await featureClient.getUserFeatures({ userId, historyLimit: 50 })).history.map((h) => h.itemId));
      const answer = await client.retrieve({ userId, limit: 25 });
      expect(answer.indexVersion).toBe('1');
      expect(answer.modelVersion).toBe(models.version);
      expect(answer.coldStart).toBe(false);
      expect(answer.channels.map((r) => [r.channel, r.error])).toEqual([
        ['two_tower', ''],
        ['popular', ''],
        ['item_to_item', ''],
      ]);
      expect(answer.candidates).toHaveLength(25);
      expect(answer.candidates.filter((c) => history.has(c.itemId))).toEqual([]);

      // A frozen feature service is a slow channel: the popular list read before keeps serving from memory; a filter
      // never read before times out; user state falls back to the context.
      featureProcess.child.kill('SIGSTOP');
      try {
        const context = { recentItems: [{ itemId: models.setup.dataset.items.ids[9]! }] };
        const cached = await client.retrieve({ userId, context, limit: 25 });
        expect(cached.channels.find((r) => r.channel === 'popular')).toMatchObject({ error: '' });
        const filter = { excludeCategories: ['never-read-before'] };
        const slow = await client.retrieve({ userId, context, limit: 25, filter });
        const reports = Object.fromEntries(slow.channels.map((r) => [r.channel, r]));
        expect(reports.popular).toMatchObject({ returned: 0, error: 'timed out after 1000 ms' });
        expect(reports.two_tower!.error).toBe('');
        expect(reports.item_to_item!.error).toBe('');
        expect(slow.candidates).toHaveLength(25);
        expect(slow.coldStart).toBe(false);
      } finally {
        featureProcess.child.kill('SIGCONT');
      }
      expect((await client.retrieve({ userId, limit: 5 })).channels.every((r) => r.error === '')).toBe(true);

      const second = await runNode(cli(), ['build', '--models', models.root, '--index-dir', root, '--no-payload']);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('index version 2 published');
      const until = Date.now() + 15_000;
      while ((await client.getIndexInfo({})).indexVersion !== '2' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect((await client.retrieve({ userId, limit: 5 })).indexVersion).toBe('2');

      service.child.kill('SIGTERM');
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain('index version 2 serving');
      expect(exit.stdout).toContain('retrieval service stopped');
    } finally {
      client.close();
      featureClient.close();
      service?.child.kill('SIGKILL');
      featureProcess.child.kill('SIGTERM');
      await featureProcess.exited;
    }
  });
});
