import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { type EncodedSources, batchFeeds, inputLayout, type Tensor } from '@recsys/model-format';
import { USER_HISTORY, encodeTable, userStateContext } from '@recsys/data';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { type TrainedModels, trainedModels } from '@recsys/testing';
import { assembleFeeds, concatFeeds } from '@recsys/serving';
import { loadFeatures } from '@recsys/offline';
import { readItemRows, readUserState } from './feature-reader.js';
import { loadModelVersion } from '@recsys/model-format';
import { UserTower } from '@recsys/serving';

/**
 * The serving path (features stored in a real Redis behind the feature service, read back over gRPC,
 * encoded by assembleFeeds) must feed the models exactly what the trainer fed them for the same user,
 * item and history: recent items and the user history input (the user's fitted positives) alike.
 */
describe('serving features equal the trainer features (real Redis, gRPC, trained models)', () => {
  let models: TrainedModels;
  let service: RunningGrpcService;
  let client: ServiceClient<typeof features.FeatureService.method>;

  beforeAll(async () => {
    models = await trainedModels();
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
    const config = loadFeaturesConfig({
      GRPC_PORT: '0',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `sp${randomUUID().slice(0, 8)}:`,
      LOG_LEVEL: 'silent',
    });
    service = await startFeatureService(config, createLogger('features', 'silent'));
    client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 10_000 });
    // Only train interactions: the trainer's user state is built from them.
    const loaded = await loadFeatures(client, models.setup, { history: 'train' });
    expect(loaded.rejected).toEqual([]);
    expect(loaded.users).toBe(models.setup.dataset.users.ids.length);
  }, 180_000);

  afterAll(async () => {
    client?.close();
    await service?.close();
  });

  const HISTORY = 10;
  const sampleUsers = () => Array.from({ length: 40 }, (_, k) => (k * 37) % models.setup.dataset.users.ids.length);

  function trainerSources(spec: Parameters<typeof inputLayout>[0]): EncodedSources {
    const { setup } = models;
    return {
      user: encodeTable(setup.dataset.users, spec.features, 'user'),
      item: encodeTable(setup.dataset.items, spec.features, 'item'),
      context: encodeTable(userStateContext(setup, HISTORY), spec.features, 'context'),
    };
  }

  function expectSameFeeds(served: Record<string, Tensor>, trained: Record<string, Tensor>) {
    expect(Object.keys(served).sort()).toEqual(Object.keys(trained).sort());
    for (const [name, t] of Object.entries(trained)) {
      expect({ name, shape: served[name]!.shape }).toEqual({ name, shape: t.shape });
      expect({ name, data: Array.from(served[name]!.data) }).toEqual({ name, data: Array.from(t.data) });
    }
  }

  it('user tower inputs: stored features and history read back give the trainer feeds', async () => {
    const twoTower = await loadModelVersion(models.root, 'two-tower');
    const spec = twoTower.manifest.featureSpecs.user!;
    const layout = inputLayout(spec);
    const users = sampleUsers();
    const states = await Promise.all(
      users.map((u) => readUserState(client, models.setup.dataset.users.ids[u]!, undefined, HISTORY, HISTORY)),
    );
    expect(states.some((s) => s.history.length > 0)).toBe(true);
    const served = concatFeeds(states.map((s) => assembleFeeds(layout, s, 'user_'))).feeds;
    const rows = Int32Array.from(users);
    const trained = batchFeeds(layout, trainerSources(spec), { user: rows, context: rows }, rows.length, 'user_');
    // The user history input (the user's fitted positives) is among them, and filled.
    expect(spec.features.map((f) => f.name)).toContain(USER_HISTORY);
    expect(Array.from(trained[`user_multi_${USER_HISTORY}_weights`]!.data).some((w) => w > 0)).toBe(true);
    expectSameFeeds(served, trained);
  });

  it('DLRM inputs: user, items (one batch read) and context give the trainer feeds', async () => {
    const dlrm = await loadModelVersion(models.root, 'dlrm');
    const spec = dlrm.manifest.featureSpecs.model!;
    const layout = inputLayout(spec);
    const itemIds = models.setup.dataset.items.ids;
    const items = Array.from({ length: 25 }, (_, k) => (k * 7) % itemIds.length);
    const sources = trainerSources(spec);
    // DLRM reads the user history as one more pooled embedding (DCN-v2 beside the dot interaction).
    expect(spec.features.map((f) => f.name)).toContain(USER_HISTORY);
    expect(dlrm.manifest.config.interaction).toBe('dotdcn');
    for (const u of sampleUsers().slice(0, 8)) {
      const state = await readUserState(client, models.setup.dataset.users.ids[u]!, undefined, HISTORY, HISTORY);
      const { rows, missing } = await readItemRows(
        client,
        items.map((i) => itemIds[i]!),
      );
      expect(missing).toEqual([]);
      const served = assembleFeeds(layout, { user: state.user, context: state.context, items: rows });
      const trained = batchFeeds(
        layout,
        sources,
        { user: new Int32Array(items.length).fill(u), item: Int32Array.from(items), context: new Int32Array(items.length).fill(u) },
        items.length,
      );
      expectSameFeeds(served, trained);
    }
  });

  it('the user tower embeds a known user, a cold user and a context-only request into unit vectors', async () => {
    const tower = await UserTower.load(await loadModelVersion(models.root, 'two-tower'), { providers: ['cpu'] });
    try {
      const known = await readUserState(client, models.setup.dataset.users.ids[3]!, undefined, tower.historyLength);
      const cold = await readUserState(client, 'nobody-' + randomUUID(), undefined, tower.historyLength);
      expect(cold.found).toBe(false);
      const withContext = await readUserState(
        client,
        'nobody-' + randomUUID(),
        create(common.UserContextSchema, { recentItems: [{ itemId: models.setup.dataset.items.ids[0]! }] }),
        tower.historyLength,
      );
      const out = await tower.embed([known, cold, withContext]);
      expect(out.length).toBe(3 * tower.dim);
      for (let k = 0; k < 3; k++) {
        let norm = 0;
        for (let d = 0; d < tower.dim; d++) norm += out[k * tower.dim + d]! ** 2;
        expect(Math.sqrt(norm)).toBeCloseTo(1, 4);
      }
      // The context item changes the cold user's embedding.
      expect(Array.from(out.subarray(tower.dim * 2))).not.toEqual(Array.from(out.subarray(tower.dim, tower.dim * 2)));
    } finally {
      await tower.release();
    }
  });
});
