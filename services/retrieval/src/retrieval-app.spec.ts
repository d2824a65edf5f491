import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { status, type ServiceError } from '@grpc/grpc-js';
import { common, features, retrieval } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { loadModelVersion, readItemVectors, recentItems, UserTower, type ItemVectors } from '@recsys/serving';
import { readUserState } from '@recsys/stage';
import { loadFeatures } from '@recsys/offline';
import { trainedModels, type TrainedModels } from '@recsys/testing';
import { exactSearch, publishIndex } from '@recsys/vector-index';
import { loadRetrievalConfig } from './config.js';
import { buildIndexVersion } from './index-builder.js';
import { startRetrievalService, type RunningRetrievalService } from './retrieval-app.js';

type RetrievalClient = ServiceClient<typeof retrieval.RetrievalService.method>;
type FeatureClient = ServiceClient<typeof features.FeatureService.method>;
type RetrieveInit = Parameters<RetrievalClient['retrieve']>[0];

const { log } = Math;
const DECAY = 0.85;

/**
 * The retrieval service over real gRPC on loopback, with the trained test models, an embedded index built from the
 * two-tower's item vectors, and a feature service on the real Redis holding the training data.
 */
describe('retrieval service (trained models, embedded index, feature service on Redis, gRPC)', () => {
  let models: TrainedModels;
  let featureService: RunningGrpcService;
  let featureClient: FeatureClient;
  let service: RunningRetrievalService;
  let client: RetrievalClient;
  let indexRoot: string;
  let vectors: ItemVectors;
  let categories: Map<string, string>;
  /** Users with the longest histories first. */
  let users: { userId: string; history: string[]; entries: features.HistoryEntry[] }[];

  beforeAll(async () => {
    models = await trainedModels();
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
    featureService = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `rt${randomUUID().slice(0, 8)}:`, LOG_LEVEL: 'silent' }),
      createLogger('features', 'silent'),
    );
    featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 10_000 });
    const loaded = await loadFeatures(featureClient, models.setup);
    expect(loaded.rejected).toEqual([]);

    indexRoot = mkdtempSync(join(tmpdir(), 'recsys-retrieval-index-'));
    const built = await buildIndexVersion({
      modelsDir: models.root,
      target: { kind: 'embedded', root: indexRoot },
      payloadReader: featureClient,
      queryReader: featureClient,
    });
    expect(built.info).toMatchObject({ version: '1', modelVersion: models.version, size: models.setup.dataset.items.ids.length });
    expect(built.missingPayload).toBe(0);
    // Every trained user is known to the feature service: all of them shape the graph.
    expect(built.querySample).toBe(models.setup.dataset.users.ids.length);
    vectors = await readItemVectors(await loadModelVersion(models.root, 'two-tower', models.version));

    const items = await featureClient.batchGetItemFeatures({ itemIds: vectors.ids });
    categories = new Map(items.items.map((r) => [r.item!.itemId, r.item!.category]));
    const states = await Promise.all(
      models.setup.dataset.users.ids.slice(0, 60).map(async (userId) => {
        const entries = (await featureClient.getUserFeatures({ userId, historyLimit: 50 })).history;
        return { userId, entries, history: entries.map((h) => h.itemId) };
      }),
    );
    users = states.sort((a, b) => b.history.length - a.history.length);

    const config = loadRetrievalConfig({
      GRPC_PORT: '0',
      MODELS_DIR: models.root,
      INDEX_DIR: indexRoot,
      FEATURES_ADDRESS: featureService.address,
      LOG_LEVEL: 'silent',
      INDEX_POLL_MS: '50',
      // Generous: two shared cores run the tests; these bound failures, not latency.
      FEATURES_TIMEOUT_MS: '5000',
      CHANNEL_TIMEOUT_MS: '10000',
    });
    service = await startRetrievalService(config, createLogger('retrieval', 'silent'));
    client = createServiceClient(retrieval.RetrievalService, service.address, { defaultTimeoutMs: 15_000 });
  }, 180_000);

  afterAll(async () => {
    client?.close();
    await service?.close();
    featureClient?.close();
    await featureService?.close();
    if (indexRoot) rmSync(indexRoot, { recursive: true, force: true });
  });

  const only = (channel: string, quota: number) =>
    ['two_tower', 'popular', 'item_to_item'].map((c) => ({ channel: c, limit: c === channel ? quota : 0 }));

  /** The exact top k of the item vectors for a query, skipping `blocked`. */
  function exactTop(query: Float32Array, k: number, blocked: ReadonlySet<string>) {
    return exactSearch(vectors.vectors, vectors.dim, 'ip', query, k, { accept: (row) => !blocked.has(vectors.ids[row]!) }).map((m) => ({
      id: vectors.ids[m.row]!,
      score: m.score,
    }));
  }

  const vectorOf = (id: string) => {
    const row = vectors.ids.indexOf(id);
    return vectors.vectors.slice(row * vectors.dim, (row + 1) * vectors.dim);
  };

  /** What the item-to-item channel should answer: each seed's neighbours, the best recency-adjusted score per item. */
  function expectedItemToItem(seeds: string[], quota: number, blocked: ReadonlySet<string>) {
    const skip = new Set([...blocked, ...seeds]);
    const best = new Map<string, number>();
    seeds.forEach((seed, k) => {
      for (const hit of exactTop(vectorOf(seed), quota, skip)) {
        const score = hit.score + k * log(DECAY);
        if (!best.has(hit.id) || score > best.get(hit.id)!) best.set(hit.id, score);
      }
    });
    return [...best]
      .sort((a, b) => b[1] - a[1])
      .slice(0, quota)
      .map(([id]) => id);
  }

  async function grpcError(call: Promise<unknown>): Promise<ServiceError> {
    try {
      await call;
    } catch (error) {
      return error as ServiceError;
    }
    throw new Error('the call succeeded');
  }

  it('reports the index it serves', async () => {
    const info = await client.getIndexInfo({});
    expect(info).toMatchObject({
      indexVersion: '1',
      backend: 'embedded',
      dimension: vectors.dim,
      metric: 'ip',
      modelVersion: models.version,
    });
    expect(info.size).toBe(BigInt(vectors.ids.length));
  });

  it('gives a known user two-tower candidates outside their history: the exact nearest items to their embedding', async () => {
    const { userId, history } = users[0]!;
    expect(history.length).toBeGreaterThan(5);
    const answer = await client.retrieve({ userId, limit: 20, quotas: only('two_tower', 20) });
    expect(answer.coldStart).toBe(false);
    expect(answer.modelVersion).toBe(models.version);
    expect(answer.indexVersion).toBe('1');
    expect(answer.channels).toEqual([expect.objectContaining({ channel: 'two_tower', returned: 20, error: '' })]);

    // The embedding is the user tower's output for the stored features and history.
    const tower = await UserTower.load(await loadModelVersion(models.root, 'two-tower', models.version), {});
    const state = await readUserState(featureClient, userId, undefined, tower.historyLength, 50);
    const expected = await tower.embed([state]);
    await tower.release();
    expect(answer.userEmbedding).toHaveLength(vectors.dim);
    answer.userEmbedding.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 5));

    const ids = answer.candidates.map((c) => c.itemId);
    expect(ids.filter((id) => history.includes(id))).toEqual([]);
    expect(ids).toEqual(exactTop(Float32Array.from(answer.userEmbedding), 20, new Set(history)).map((h) => h.id));
    for (const c of answer.candidates) {
      expect(c.channels).toEqual(['two_tower']);
      expect(c.stageScores).toEqual([expect.objectContaining({ stage: common.Stage.RETRIEVAL, score: c.score })]);
    }
  });

  it('answers the same with the user passed down (user_state) as when it reads the user, and embeds what it is given', async () => {
    const { userId } = users[1]!;
    const plain = await client.retrieve({ userId, limit: 60 });
    const userState = await featureClient.getUserFeatures({ userId, historyLimit: 100 });
    const passed = await client.retrieve({ userId, limit: 60, userState, userHistoryLimit: 100 });
    expect(passed.candidates.map((c) => c.itemId)).toEqual(plain.candidates.map((c) => c.itemId));
    expect(passed.userEmbedding).toEqual(plain.userEmbedding);
    // A state deep enough is used as it is: another history gives another embedding.
    const other = await featureClient.getUserFeatures({ userId: users[2]!.userId, historyLimit: 100 });
    const doctored = await client.retrieve({
      userId,
      limit: 60,
      userState: { ...userState, history: other.history },
      userHistoryLimit: 100,
    });
    expect(doctored.userEmbedding).not.toEqual(plain.userEmbedding);
    // Another user's state is refused, naming the field.
    const refused = await grpcError(client.retrieve({ userId, limit: 60, userState: other, userHistoryLimit: 100 }));
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    expect(refused.details).toContain('user_state.user.user_id');
  });

  it('merges every channel: duplicates once with all their channels, seen items dropped, quotas respected', async () => {
    const { userId, history, entries } = users[1]!;
    const context = { recentItems: [{ itemId: vectors.ids[7]! }, { itemId: vectors.ids[42]! }] };
    const quotas = { two_tower: 15, popular: 6, item_to_item: 9 };
    const answer = await client.retrieve({
      userId,
      context,
      limit: 500,
      quotas: Object.entries(quotas).map(([channel, limit]) => ({ channel, limit })),
    });
    const seen = new Set([...history, vectors.ids[7]!, vectors.ids[42]!]);
    expect(answer.channels.map((r) => [r.channel, r.returned, r.error])).toEqual([
      ['two_tower', 15, ''],
      ['popular', 6, ''],
      ['item_to_item', 9, ''],
    ]);
    const ids = answer.candidates.map((c) => c.itemId);
    expect(new Set(ids).size).toBe(ids.length);
    // Every candidate carries its category from the index payload, popular-only ones too.
    expect(answer.candidates.some((c) => c.channels.join() === 'popular')).toBe(true);
    for (const c of answer.candidates) expect(c.category).toBe(categories.get(c.itemId));
    expect(ids.filter((id) => seen.has(id))).toEqual([]);
    for (const [channel, quota] of Object.entries(quotas)) {
      expect(answer.candidates.filter((c) => c.channels.includes(channel)).length).toBe(quota);
    }
    expect(ids.length).toBeLessThanOrEqual(15 + 6 + 9);
    // Items found by several channels are merged, not repeated, and rank above single-channel items of equal rank.
    const shared = answer.candidates.filter((c) => c.channels.length > 1);
    expect(ids.length).toBe(30 - shared.reduce((n, c) => n + c.channels.length - 1, 0));
    expect(answer.candidates.map((c) => c.score)).toEqual([...answer.candidates.map((c) => c.score)].sort((a, b) => b - a));

    // Popular: the feature service's ranking without seen items; item-to-item: neighbours of context then history.
    const popular = await featureClient.getPopularItems({ limit: 200 });
    expect(answer.candidates.filter((c) => c.channels.includes('popular')).map((c) => c.itemId)).toEqual(
      expect.arrayContaining(
        popular.items
          .map((p) => p.itemId)
          .filter((id) => !seen.has(id))
          .slice(0, 6),
      ),
    );
    // The seeds: the five most recent items, context first (the trainer's recent_items order).
    const seeds = [...new Set(recentItems(create(common.UserContextSchema, context), entries, 5))];
    const i2i = await client.retrieve({ userId, context, limit: 9, quotas: only('item_to_item', 9) });
    expect(i2i.candidates.map((c) => c.itemId)).toEqual(expectedItemToItem(seeds, 9, seen));

    // The total limit cuts the fused list.
    const cut = await client.retrieve({ userId, context, limit: 4 });
    expect(cut.candidates).toHaveLength(4);
    // A quota of 0 turns a channel off.
    const noPopular = await client.retrieve({ userId, quotas: [{ channel: 'popular', limit: 0 }] });
    expect(noPopular.channels.map((r) => r.channel)).toEqual(['two_tower', 'item_to_item']);
    expect(noPopular.candidates.some((c) => c.channels.includes('popular'))).toBe(false);
  });

  it('applies the request filter in every channel; include_seen keeps seen items', async () => {
    const { userId, history } = users[2]!;
    // The category with the most items the user has not seen, so that every channel has some to propose.
    const unseen = new Map<string, number>();
    for (const [id, c] of categories) if (!history.includes(id)) unseen.set(c, (unseen.get(c) ?? 0) + 1);
    const category = [...unseen].sort((a, b) => b[1] - a[1])[0]![0];
    const inCategory = vectors.ids.filter((id) => categories.get(id) === category && !history.includes(id));
    expect(inCategory.length).toBeGreaterThan(6);
    const excluded = inCategory.slice(0, 3);
    const filtered = await client.retrieve({
      userId,
      limit: 100,
      filter: { includeCategories: [category], excludeItemIds: excluded },
    });
    expect(filtered.channels.map((r) => [r.channel, r.error])).toEqual([
      ['two_tower', ''],
      ['popular', ''],
      ['item_to_item', ''],
    ]);
    // Two-tower and item-to-item find every acceptable item (the catalogue is small); popular those with events.
    expect(filtered.channels[0]!.returned).toBe(inCategory.length - 3);
    expect(filtered.channels[2]!.returned).toBe(inCategory.length - 3);
    expect(filtered.candidates).toHaveLength(inCategory.length - 3);
    for (const c of filtered.candidates) {
      expect(categories.get(c.itemId)).toBe(category);
      expect(c.category).toBe(category);
      expect(excluded).not.toContain(c.itemId);
    }
    const other = await client.retrieve({ userId, limit: 100, filter: { excludeCategories: [category] } });
    expect(other.candidates.length).toBeGreaterThan(0);
    expect(other.candidates.filter((c) => categories.get(c.itemId) === category)).toEqual([]);

    const withSeen = await client.retrieve({ userId, limit: 30, includeSeen: true, quotas: only('two_tower', 30) });
    const expected = exactTop(Float32Array.from(withSeen.userEmbedding), 30, new Set()).map((h) => h.id);
    expect(withSeen.candidates.map((c) => c.itemId)).toEqual(expected);
    expect(expected.some((id) => history.includes(id))).toBe(true);
  });

  it('answers an unknown user (cold start) from popular items and the context items’ neighbours', async () => {
    const context = { recentItems: [{ itemId: vectors.ids[3]! }, { itemId: vectors.ids[150]! }] };
    const answer = await client.retrieve({ userId: `nobody-${randomUUID()}`, context, limit: 500 });
    expect(answer.coldStart).toBe(true);
    expect(answer.userEmbedding).toEqual([]);
    expect(answer.channels.map((r) => [r.channel, r.error])).toEqual([
      ['two_tower', 'skipped: unknown user (cold start)'],
      ['popular', ''],
      ['item_to_item', ''],
    ]);
    expect(answer.candidates.some((c) => c.channels.includes('two_tower'))).toBe(false);
    const seen = new Set([vectors.ids[3]!, vectors.ids[150]!]);
    expect(answer.candidates.filter((c) => seen.has(c.itemId))).toEqual([]);
    expect(answer.candidates.filter((c) => c.channels.includes('item_to_item')).map((c) => c.itemId)).toEqual(
      expect.arrayContaining(expectedItemToItem([vectors.ids[3]!, vectors.ids[150]!], 100, seen)),
    );
    expect(answer.candidates.filter((c) => c.channels.includes('popular')).length).toBe(50);

    // Without context only popular answers.
    const bare = await client.retrieve({ userId: `nobody-${randomUUID()}` });
    expect(bare.coldStart).toBe(true);
    expect(bare.candidates.length).toBe(50);
    expect(bare.candidates.every((c) => c.channels.join() === 'popular')).toBe(true);
  });

  it('rejects bad requests with INVALID_ARGUMENT naming the field', async () => {
    const cases: [RetrieveInit, string][] = [
      [{ userId: '' }, 'user_id'],
      [{ userId: 'x'.repeat(300) }, 'user_id'],
      [{ userId: 'u1', limit: 100_000 }, 'limit'],
      [{ userId: 'u1', limit: -5 }, 'limit'],
      [{ userId: 'u1', quotas: [{ channel: 'trending', limit: 5 }] }, 'quotas[0].channel'],
      [{ userId: 'u1', quotas: [{ channel: 'popular', limit: -1 }] }, 'quotas[0].limit'],
    ];
    for (const [request, field] of cases) {
      const error = await grpcError(client.retrieve(request));
      expect({ field, code: error.code }).toEqual({ field, code: status.INVALID_ARGUMENT });
      expect(error.details).toContain(`${field}:`);
    }
    const similar = await grpcError(client.getSimilarItems({ itemId: '' }));
    expect(similar.code).toBe(status.INVALID_ARGUMENT);
    expect(similar.details).toContain('item_id:');
  });

  it('finds similar items: the exact neighbours, never the item itself; an unknown item is NOT_FOUND', async () => {
    const item = vectors.ids[11]!;
    const answer = await client.getSimilarItems({ itemId: item, limit: 10 });
    expect(answer.candidates.map((c) => c.itemId)).toEqual(exactTop(vectorOf(item), 10, new Set([item])).map((h) => h.id));
    const category = categories.get(item)!;
    const sameCategory = await client.getSimilarItems({ itemId: item, limit: 5, filter: { includeCategories: [category] } });
    expect(sameCategory.candidates.every((c) => categories.get(c.itemId) === category && c.itemId !== item)).toBe(true);
    const missing = await grpcError(client.getSimilarItems({ itemId: 'no-such-item' }));
    expect(missing.code).toBe(status.NOT_FOUND);
  });

  it('swaps to a new index version during concurrent requests without losing one, and refuses a broken version', async () => {
    const versions = new Set<string>();
    let failures = 0;
    let done = false;
    const stream = async (k: number) => {
      let sent = 0;
      while (!done || sent < 5) {
        const { userId } = users[(k * 7 + sent) % users.length]!;
        try {
          const answer = await client.retrieve({ userId, limit: 20 });
          versions.add(answer.indexVersion);
          if (answer.candidates.length === 0) failures++;
        } catch {
          failures++;
        }
        sent++;
      }
      return sent;
    };
    const streams = [0, 1, 2, 3].map(stream);
    const built = await buildIndexVersion({
      modelsDir: models.root,
      target: { kind: 'embedded', root: indexRoot },
      payloadReader: featureClient,
    });
    expect(built.info.version).toBe('2');
    while ((await client.getIndexInfo({})).indexVersion !== '2') await new Promise((r) => setTimeout(r, 20));
    // Requests keep flowing a little on the new version before the streams stop.
    await new Promise((r) => setTimeout(r, 200));
    done = true;
    const sent = await Promise.all(streams);
    expect(failures).toBe(0);
    expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
    expect([...versions].sort()).toEqual(['1', '2']);

    // A version whose two-tower model is not under MODELS_DIR cannot serve: refused, version 2 keeps serving.
    await publishIndex(
      { kind: 'embedded', root: indexRoot },
      { ids: vectors.ids, vectors: vectors.vectors, dim: vectors.dim, metric: 'ip', version: '3', modelVersion: '99' },
    );
    await service.checkIndex();
    expect((await client.getIndexInfo({})).indexVersion).toBe('2');
    const after = await client.retrieve({ userId: users[0]!.userId });
    expect(after.indexVersion).toBe('2');
    const metrics = await service.metrics.registry.metrics();
    expect(metrics).toMatch(/retrieval_index_swaps_total\{outcome="ok",service="retrieval"\} 1/);
    expect(metrics).toMatch(/retrieval_index_swaps_total\{outcome="refused",service="retrieval"\} 1/);
    expect(metrics).toMatch(/retrieval_channel_calls_total\{channel="two_tower",outcome="ok",service="retrieval"\} \d+/);
    expect(metrics).toMatch(/retrieval_cold_starts_total\{service="retrieval"\} [1-9]/);
  });

  // Last: it stops the feature service.
  it('answers degraded when the feature service is down: popular from memory (or its error), two-tower runs on the context', async () => {
    await featureService.close();
    const { userId } = users[0]!;
    const context = { recentItems: [{ itemId: vectors.ids[5]! }, { itemId: vectors.ids[6]! }] };
    const answer = await client.retrieve({ userId, context, limit: 100 });
    expect(answer.coldStart).toBe(false);
    const reports = Object.fromEntries(answer.channels.map((r) => [r.channel, r]));
    // The unfiltered popular list was read by earlier calls: it keeps serving from memory.
    expect(reports.popular!.error).toBe('');
    expect(reports.popular!.returned).toBeGreaterThan(0);
    // A filter never read before has no list in memory: that channel reports the feature service's error.
    const filtered = await client.retrieve({ userId, context, limit: 100, filter: { excludeCategories: ['never-read-before'] } });
    const filteredPopular = filtered.channels.find((r) => r.channel === 'popular')!;
    expect(filteredPopular.error).not.toBe('');
    expect(filteredPopular.returned).toBe(0);
    expect(reports.two_tower!.error).toBe('');
    expect(reports.two_tower!.returned).toBeGreaterThan(0);
    expect(reports.item_to_item!.error).toBe('');
    expect(answer.userEmbedding).toHaveLength(vectors.dim);
    const ids = answer.candidates.map((c) => c.itemId);
    expect(ids).not.toContain(vectors.ids[5]);
    expect(ids.length).toBe(100);
    // Item-to-item answers from the context items alone.
    const i2i = await client.retrieve({ userId, context, limit: 10, quotas: only('item_to_item', 10) });
    const seen = new Set([vectors.ids[5]!, vectors.ids[6]!]);
    expect(i2i.candidates.map((c) => c.itemId)).toEqual(expectedItemToItem([vectors.ids[5]!, vectors.ids[6]!], 10, seen));

    // When every channel that runs fails, the call fails.
    const error = await grpcError(
      client.retrieve({ userId, quotas: only('popular', 10), filter: { includeCategories: ['never-read-before'] } }),
    );
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.details).toContain('every retrieval channel failed: popular:');
    const metrics = await service.metrics.registry.metrics();
    expect(metrics).toMatch(/retrieval_channel_calls_total\{channel="popular",outcome="error",service="retrieval"\} [1-9]/);
    expect(metrics).toMatch(/retrieval_user_state_failures_total\{service="retrieval"\} [1-9]/);
  });
});

(process.env.QDRANT_URL ? describe : describe.skip)('retrieval service on Qdrant (skipped: set QDRANT_URL to a Qdrant to run)', () => {
  it('builds a version into Qdrant and serves a known user and similar items from it', async () => {
    const models = await trainedModels();
    const collection = `recsys_test_${randomUUID().slice(0, 8)}`;
    const target = {
      kind: 'qdrant' as const,
      url: process.env.QDRANT_URL!,
      collection,
      ...(process.env.QDRANT_API_KEY ? { apiKey: process.env.QDRANT_API_KEY } : {}),
    };
    const featureService = await startFeatureService(
      loadFeaturesConfig({
        GRPC_PORT: '0',
        REDIS_URL: process.env.REDIS_TEST_URL!,
        REDIS_KEY_PREFIX: `rq${randomUUID().slice(0, 8)}:`,
        LOG_LEVEL: 'silent',
      }),
      createLogger('features', 'silent'),
    );
    const featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 10_000 });
    let service: RunningRetrievalService | undefined;
    let client: RetrievalClient | undefined;
    try {
      await loadFeatures(featureClient, models.setup);
      const built = await buildIndexVersion({ modelsDir: models.root, target, payloadReader: featureClient });
      expect(built.info).toMatchObject({ backend: 'qdrant', version: '1', modelVersion: models.version });
      service = await startRetrievalService(
        loadRetrievalConfig({
          GRPC_PORT: '0',
          MODELS_DIR: models.root,
          INDEX_BACKEND: 'qdrant',
          QDRANT_URL: target.url,
          QDRANT_API_KEY: process.env.QDRANT_API_KEY,
          QDRANT_COLLECTION: collection,
          FEATURES_ADDRESS: featureService.address,
          LOG_LEVEL: 'silent',
          FEATURES_TIMEOUT_MS: '5000',
          CHANNEL_TIMEOUT_MS: '10000',
        }),
        createLogger('retrieval', 'silent'),
      );
      client = createServiceClient(retrieval.RetrievalService, service.address, { defaultTimeoutMs: 15_000 });
      expect(await client.getIndexInfo({})).toMatchObject({ backend: 'qdrant', indexVersion: '1', modelVersion: models.version });
      const userId = models.setup.dataset.users.ids[0]!;
      const history = (await featureClient.getUserFeatures({ userId, historyLimit: 50 })).history.map((h) => h.itemId);
      const answer = await client.retrieve({ userId, limit: 20 });
      expect(answer.channels.every((r) => r.error === '')).toBe(true);
      expect(answer.candidates.some((c) => c.channels.includes('two_tower'))).toBe(true);
      expect(answer.candidates.filter((c) => history.includes(c.itemId))).toEqual([]);
      const categoryOf = new Map(models.setup.dataset.items.ids.map((id, row) => [id, itemCategory(models, row)]));
      for (const c of answer.candidates) expect(c.category).toBe(categoryOf.get(c.itemId));
      const item = models.setup.dataset.items.ids[0]!;
      const similar = await client.getSimilarItems({ itemId: item, limit: 5 });
      expect(similar.candidates).toHaveLength(5);
      expect(similar.candidates.map((c) => c.itemId)).not.toContain(item);
    } finally {
      client?.close();
      await service?.close();
      featureClient.close();
      await featureService.close();
    }
  });
});

function itemCategory(models: TrainedModels, row: number): string {
  const column = models.setup.dataset.items.columns.category;
  return column?.kind === 'categorical' ? column.values[row]! : '';
}
