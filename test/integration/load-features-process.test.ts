import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { features } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { builtEntry, runNode, startNode, trainedModels } from '@recsys/testing';

const cli = () => builtEntry('packages/offline/dist/load-features-cli.js');
const featuresMain = () => builtEntry('services/features/dist/main.js');

describe('recsys-load-features as a process', () => {
  it('loads the data a model version was trained on into a feature service process, idempotently', async () => {
    const models = await trainedModels();
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const service = startNode(featuresMain(), {
      GRPC_PORT: String(port),
      REDIS_URL: process.env.REDIS_TEST_URL!,
      REDIS_KEY_PREFIX: `lf${port}:`,
    });
    const client = createServiceClient(features.FeatureService, address, { defaultTimeoutMs: 5000 });
    try {
      await waitForServing(address, 15000);
      const first = await runNode(cli(), ['--models', models.root, '--address', address], {}, 60_000);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const { users, items } = models.setup.dataset;
      expect(first.stdout).toContain(`${users.ids.length} users, ${items.ids.length} items`);

      const user = await client.getUserFeatures({ userId: users.ids[0]!, historyLimit: 50 });
      expect(user.found).toBe(true);
      expect(user.user?.features?.values.train_count?.kind.case).toBe('numeric');
      expect(user.history.length).toBeGreaterThan(0);
      const item = await client.batchGetItemFeatures({ itemIds: [items.ids[0]!] });
      expect(item.items[0]!.item!.category).toBe((items.columns.category as { values: string[] }).values[0]);

      // Events carry stable ids: a second load records nothing twice.
      const second = await runNode(cli(), ['--models', models.root, '--address', address], {}, 60_000);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/ 0 events \((\d+) already recorded\)/);
      const again = await client.getUserFeatures({ userId: users.ids[0]!, historyLimit: 50 });
      expect(again.history.length).toBe(user.history.length);
    } finally {
      client.close();
      service.child.kill('SIGTERM');
      await service.exited;
    }
  }, 120_000);

  it('refuses bad flags (exit 2, naming the flag) and data that changed since training (exit 1)', async () => {
    const models = await trainedModels();
    const bad = await runNode(cli(), ['--models', models.root, '--history', 'some']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--history: expected all, train or none, got "some"');
    const unknown = await runNode(cli(), ['--modles', models.root]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--modles'");
    const none = await runNode(cli(), ['--models', join(tmpdir(), 'no-such-models-dir')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no published version of dlrm');

    // A manifest whose fingerprint no longer matches the data it names.
    const root = await mkdtemp(join(tmpdir(), 'lf-models-'));
    try {
      await cp(join(models.root, 'dlrm'), join(root, 'dlrm'), { recursive: true });
      const path = join(root, 'dlrm', models.version, 'manifest.json');
      const manifest = JSON.parse(await readFile(path, 'utf8')) as { data: { fingerprint: string } };
      manifest.data.fingerprint = '0'.repeat(64);
      await writeFile(path, JSON.stringify(manifest));
      const changed = await runNode(cli(), ['--models', root, '--address', '127.0.0.1:1']);
      expect(changed.code).toBe(1);
      expect(changed.stderr).toContain('has changed since version 1 was trained');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);
});
