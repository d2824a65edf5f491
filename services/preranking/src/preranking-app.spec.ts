import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { common, features, preranking } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, freePort, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { assembleFeeds, loadModelVersion, ModelSession, readItemVectors, UserTower } from '@recsys/serving';
import { readItemRows, readUserState } from '@recsys/stage';
import { itemRecords, loadFeatures } from '@recsys/offline';
import { trainedModels, type TrainedModels } from '@recsys/testing';
import { type ModelManifest, type ModelName, prerankerLayout } from '@recsys/model-format';
import { loadPrerankingConfig } from './config.js';
import { startPrerankingService, type RunningPrerankingService } from './preranking-app.js';

type PrerankingClient = ServiceClient<typeof preranking.PrerankingService.method>;
type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

describe('pre-ranking service (real pre-ranker and two-tower, feature service on Redis, gRPC)', () => {
  let models: TrainedModels;
  let featureService: RunningGrpcService;
  let featureClient: FeatureClient;
  let tower: UserTower;
  const roots: string[] = [];
  const running: { service: RunningPrerankingService; client: PrerankingClient }[] = [];

  beforeAll(async () => {
    models = await trainedModels();
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
    featureService = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `pr${randomUUID().slice(0, 8)}:`, LOG_LEVEL: 'silent' }),
      createLogger('features', 'silent'),
    );
    featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 10_000 });
    expect((await loadFeatures(featureClient, models.setup)).rejected).toEqual([]);
    tower = await UserTower.load(await loadModelVersion(models.root, 'two-tower', models.version), { providers: ['cpu'] });
  }, 180_000);

  afterAll(async () => {
    for (const { service, client } of running) {
      client.close();
      await service.close();
    }
    await tower?.release();
    featureClient?.close();
    await featureService?.close();
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  /** Publishes a trained model as `version` the way the trainer does (a staging directory renamed into place). */
  function publish(root: string, name: ModelName, version: string, change?: (manifest: ModelManifest) => void): void {
    const staging = join(root, name, `.staging-${version}`);
    cpSync(join(models.root, name, models.version), staging, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(staging, 'manifest.json'), 'utf8')) as ModelManifest;
    manifest.version = version;
    if (manifest.dependsOn?.['two-tower']) manifest.dependsOn['two-tower'] = version;
    change?.(manifest);
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest));
    renameSync(staging, join(root, name, version));
  }

  /** A private model root with the trained two-tower and pre-ranker as version 1. */
  function modelRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'recsys-preranking-'));
    roots.push(root);
    publish(root, 'two-tower', '1');
    publish(root, 'preranker', '1');
    return root;
  }

  async function start(env: Record<string, string>, clock?: () => number) {
    const config = loadPrerankingConfig({
      GRPC_PORT: '0',
      METRICS_PORT: '0',
      FEATURES_ADDRESS: featureService.address,
      // Generous: a loaded CI machine must not turn a slow feature read into a failed call (the default is 300 ms).
      FEATURES_TIMEOUT_MS: '5000',
      MODEL_POLL_INTERVAL_MS: '0',
      LOG_LEVEL: 'silent',
      PRERANKING_DEFAULT_LIMIT: '20',
      PRERANKING_MAX_LIMIT: '100',
      ...env,
    });
    const service = await startPrerankingService(config, createLogger('preranking', 'silent'), { clock });
    const client = createServiceClient(preranking.PrerankingService, service.address, { defaultTimeoutMs: 20_000 });
    running.push({ service, client });
    return { service, client };
  }

  const userIds = () => models.setup.dataset.users.ids;
  const itemIds = () => models.setup.dataset.items.ids;
  const candidates = (ids: readonly string[]) =>
    ids.map((itemId) => ({ itemId, channels: ['two_tower'], stageScores: [{ stage: common.Stage.RETRIEVAL, score: 1 }] }));
  const scoresById = (response: preranking.PrerankResponse) => new Map(response.candidates.map((c) => [c.itemId, c.score]));
  const embed = async (userId: string) =>
    Array.from(await tower.embed([await readUserState(featureClient, userId, undefined, tower.historyLength)]));

  it('keeps the top N by the pre-ranker score, with the stage score appended', async () => {
    const { client } = await start({ MODELS_DIR: modelRoot() });
    const user = userIds()[7]!;
    const request = { userId: user, candidates: candidates(itemIds().slice(0, 80)) };
    const all = await client.prerank({ ...request, limit: 80 });
    expect(all.modelVersion).toBe('1');
    expect(all.candidates).toHaveLength(80);
    const scores = all.candidates.map((c) => c.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const c of all.candidates) {
      expect(c.stageScores.map((s) => [s.stage, s.score])).toEqual([
        [common.Stage.RETRIEVAL, 1],
        [common.Stage.PRERANKING, c.score],
      ]);
    }
    // limit 0 keeps the configured default.
    const byDefault = await client.prerank(request);
    expect(byDefault.candidates).toEqual(all.candidates.slice(0, 20));
    const five = await client.prerank({ ...request, limit: 5 });
    expect(five.candidates).toEqual(all.candidates.slice(0, 5));
  });

  it('scores identically whether the user embedding comes from the request or is computed here', async () => {
    const { client, service } = await start({ MODELS_DIR: modelRoot() });
    for (const user of [userIds()[3]!, userIds()[150]!]) {
      const request = { userId: user, candidates: candidates(itemIds().slice(20, 120)), limit: 100 };
      const computed = await client.prerank(request);
      const given = await client.prerank({ ...request, userEmbedding: await embed(user), embeddingModelVersion: '1' });
      expect(given.candidates).toEqual(computed.candidates);
      // An embedding from another two-tower version is not used: the service embeds the user itself.
      const stale = await client.prerank({ ...request, userEmbedding: new Array(tower.dim).fill(0.1), embeddingModelVersion: '0' });
      expect(stale.candidates).toEqual(computed.candidates);
    }
    // A wrong embedding of the right version changes the scores: the request's embedding is really used.
    const request = { userId: userIds()[3]!, candidates: candidates(itemIds().slice(20, 120)), limit: 100 };
    const other = await client.prerank({ ...request, userEmbedding: await embed(userIds()[90]!), embeddingModelVersion: '1' });
    expect(other.candidates.map((c) => c.score)).not.toEqual((await client.prerank(request)).candidates.map((c) => c.score));
    const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    expect(text).toMatch(/preranking_user_embeddings_total\{source="request"[^}]*\} 3/);
    expect(text).toMatch(/preranking_user_embeddings_total\{source="computed"[^}]*\} 5/);
  });

  it('keeps items the two-tower does not know, scored with a zero item vector, and counts them', async () => {
    const root = modelRoot();
    const { client, service } = await start({ MODELS_DIR: root });
    const user = userIds()[11]!;
    const ids = ['brand-new-item', ...itemIds().slice(0, 9)];
    const answer = await client.prerank({ userId: user, candidates: candidates(ids), limit: 10 });
    expect(answer.candidates.map((c) => c.itemId).sort()).toEqual([...ids].sort());

    // The same scores from a bare session: the two-tower vectors (the service finds them through its item table's links),
    // a zero vector for the unknown item, the continuous features.
    const version = await loadModelVersion(root, 'preranker');
    const graph = version.manifest.graphs.model!;
    const vectors = await readItemVectors(await loadModelVersion(root, 'two-tower', '1'));
    const session = await ModelSession.create(version.graphs.model!, graph.inputs, { label: 'bare preranker' });
    try {
      const embedding = await embed(user);
      const n = ids.length;
      const dim = vectors.dim;
      const items = new Float32Array(n * dim);
      ids.forEach((id, k) => {
        const row = vectors.ids.indexOf(id);
        if (row >= 0) items.set(vectors.vectors.subarray(row * dim, (row + 1) * dim), k * dim);
      });
      const state = await readUserState(featureClient, user, undefined, 1, 1);
      const rows = await readItemRows(featureClient, ids);
      const feeds = {
        user_embedding: { data: Float32Array.from({ length: n * dim }, (_, i) => embedding[i % dim]!), shape: [n, dim] },
        item_embedding: { data: items, shape: [n, dim] },
        ...assembleFeeds(prerankerLayout(version.manifest.featureSpecs.model!)!, {
          user: state.user,
          context: state.context,
          items: rows.rows,
        }),
      };
      const bare = (await session.run(feeds))[graph.outputs[0]!.name]!;
      const served = scoresById(answer);
      ids.forEach((id, k) => expect(served.get(id)).toBe(bare[k]));
    } finally {
      await session.release();
    }
    const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    expect(text).toMatch(/preranking_unknown_items_total\{[^}]*\} 1/);
  });

  it('swaps in a new pre-ranker with its two-tower, and refuses one whose two-tower is missing', async () => {
    const root = modelRoot();
    const { client, service } = await start({ MODELS_DIR: root });
    const request = { userId: userIds()[2]!, candidates: candidates(itemIds().slice(0, 30)), limit: 30 };
    const before = await client.prerank(request);
    publish(root, 'two-tower', '2');
    publish(root, 'preranker', '2');
    await service.checkModels();
    const after = await client.prerank(request);
    expect(after.modelVersion).toBe('2');
    expect(after.candidates).toEqual(before.candidates);
    const lease = service.models.acquire();
    expect(lease.model.twoTowerVersion).toBe('2');
    lease.release();
    // An embedding made by two-tower v1 is now stale; it is not used.
    const stale = await client.prerank({ ...request, userEmbedding: new Array(tower.dim).fill(0.3), embeddingModelVersion: '1' });
    expect(stale.candidates).toEqual(after.candidates);

    publish(root, 'preranker', '3', (manifest) => (manifest.dependsOn = { 'two-tower': '9' }));
    await service.checkModels();
    expect((await client.prerank(request)).modelVersion).toBe('2');
    const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    expect(text).toMatch(/preranking_model_reloads_total\{outcome="refused"[^}]*\} 1/);
    expect(text).toMatch(/preranking_model_reloads_total\{outcome="loaded"[^}]*\} 2/);
  });

  it('serves repeated candidates from its item cache with the answers of an uncached service, and sees a change after the TTL', async () => {
    const root = modelRoot();
    let now = 1_000;
    // The item cache alone (no item table): every candidate is read through it.
    const cached = await start({ MODELS_DIR: root, ITEM_TABLE_MAX_ITEMS: '0' }, () => now);
    const uncached = await start({ MODELS_DIR: root, ITEM_CACHE_SIZE: '0', ITEM_TABLE_MAX_ITEMS: '0' });
    // An item of this test only (the other tests share the feature service); the two-tower does not know it.
    const record = itemRecords(models.setup)[4]!;
    const changing = `changing-${randomUUID()}`;
    await featureClient.upsertItems({ items: [{ ...record, itemId: changing }] });
    const request = { userId: userIds()[12]!, candidates: candidates([changing, ...itemIds().slice(30, 90)]), limit: 61 };

    const first = await cached.client.prerank(request);
    expect(first).toEqual(await uncached.client.prerank(request));
    expect(await cached.client.prerank(request)).toEqual(first);
    const text = await (await fetch(`http://127.0.0.1:${cached.service.metricsPort}/metrics`)).text();
    expect(text).toMatch(/preranking_item_cache_misses_total\{[^}]*\} 61\n/);
    expect(text).toMatch(/preranking_item_cache_hits_total\{[^}]*\} 61\n/);

    await featureClient.upsertItems({
      items: [{ itemId: changing, features: { values: { price: { kind: { case: 'numeric', value: 1e6 } } } } }],
    });
    const fresh = await uncached.client.prerank(request);
    expect(scoresById(fresh).get(changing)).not.toBe(scoresById(first).get(changing));
    now += 59_999;
    expect(await cached.client.prerank(request)).toEqual(first);
    now += 1;
    expect(await cached.client.prerank(request)).toEqual(fresh);
  });

  it('names the field of an invalid request', async () => {
    const { client } = await start({ MODELS_DIR: modelRoot(), PRERANKING_MAX_CANDIDATES: '50' });
    const ok = candidates(itemIds().slice(0, 3));
    const cases: [Parameters<PrerankingClient['prerank']>[0], string][] = [
      [{ userId: '', candidates: ok }, 'user_id: must not be empty'],
      [{ userId: 'u', candidates: [] }, 'candidates: must not be empty'],
      [{ userId: 'u', candidates: candidates(itemIds().slice(0, 51)) }, 'candidates: at most 50 per request (got 51); split the request'],
      [{ userId: 'u', candidates: candidates(['a', 'b', 'a']) }, 'candidates[2].item_id: "a" repeats candidates[0]'],
      [{ userId: 'u', candidates: candidates(['a', '']) }, 'candidates[1].item_id: must not be empty'],
      [{ userId: 'u', candidates: ok, limit: -1 }, 'limit: must be between 0 and 100 (0 means 20)'],
      [{ userId: 'u', candidates: ok, limit: 101 }, 'limit: must be between 0 and 100 (0 means 20)'],
      [
        { userId: 'u', candidates: ok, userEmbedding: [0.1, Number.NaN], embeddingModelVersion: '1' },
        'user_embedding[1]: must be a finite number',
      ],
      [
        { userId: 'u', candidates: ok, userEmbedding: [0.1, 0.2], embeddingModelVersion: '1' },
        `user_embedding: has 2 values; two-tower v1 embeds in ${tower.dim}`,
      ],
    ];
    for (const [request, details] of cases) {
      await expect(client.prerank(request)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details });
    }
  });

  it('answers UNAVAILABLE, naming the feature service, when it cannot be reached', async () => {
    const { client } = await start({
      MODELS_DIR: modelRoot(),
      FEATURES_ADDRESS: `127.0.0.1:${await freePort()}`,
      FEATURES_TIMEOUT_MS: '500',
    });
    await expect(client.prerank({ userId: 'u', candidates: candidates(itemIds().slice(0, 3)) })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('pre-ranking does not score without features'),
    });
  });
});
