import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { common, features, ranking } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService } from '@recsys/features';
import { createLogger, createServiceClient, freePort, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';
import { assembleFeeds, loadModelVersion, ModelSession } from '@recsys/serving';
import { readItemRows, readUserState } from '@recsys/stage';
import { itemRecords, loadFeatures } from '@recsys/offline';
import { trainedModels, type TrainedModels } from '@recsys/testing';
import { inputLayout, type ModelManifest, sha256 } from '@recsys/model-format';
import { loadRankingConfig, type RankingConfig } from './config.js';
import { startRankingService, type RunningRankingService } from './ranking-app.js';

type RankingClient = ServiceClient<typeof ranking.RankingService.method>;
type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

describe('ranking service (real DLRM, feature service on Redis, gRPC)', () => {
  let models: TrainedModels;
  let featureService: RunningGrpcService;
  let featureClient: FeatureClient;
  const roots: string[] = [];
  const running: { service: RunningRankingService; client: RankingClient }[] = [];

  beforeAll(async () => {
    models = await trainedModels();
    const redisUrl = process.env.REDIS_TEST_URL;
    if (!redisUrl) throw new Error('REDIS_TEST_URL is not set: the jest global setup starts redis-server');
    featureService = await startFeatureService(
      loadFeaturesConfig({ GRPC_PORT: '0', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `rk${randomUUID().slice(0, 8)}:`, LOG_LEVEL: 'silent' }),
      createLogger('features', 'silent'),
    );
    featureClient = createServiceClient(features.FeatureService, featureService.address, { defaultTimeoutMs: 10_000 });
    const loaded = await loadFeatures(featureClient, models.setup);
    expect(loaded.rejected).toEqual([]);
  }, 180_000);

  afterAll(async () => {
    for (const { service, client } of running) {
      client.close();
      await service.close();
    }
    featureClient?.close();
    await featureService?.close();
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  /** A private model root holding a copy of the trained DLRM as version 1: reloads here touch no other test. */
  function modelRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'recsys-ranking-'));
    roots.push(root);
    publish(root, '1');
    return root;
  }

  /** Publishes the trained DLRM as `version` the way the trainer does (a staging directory renamed into place). */
  function publish(root: string, version: string, change?: (dir: string, manifest: ModelManifest) => void): void {
    const staging = join(root, 'dlrm', `.staging-${version}`);
    cpSync(join(models.root, 'dlrm', models.version), staging, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(staging, 'manifest.json'), 'utf8')) as ModelManifest;
    manifest.version = version;
    change?.(staging, manifest);
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest));
    renameSync(staging, join(root, 'dlrm', version));
  }

  async function start(
    env: Record<string, string>,
    override: Partial<RankingConfig> = {},
    logLines?: string[],
    clock?: () => number,
  ): Promise<{ service: RunningRankingService; client: RankingClient }> {
    const config = {
      ...loadRankingConfig({
        GRPC_PORT: '0',
        METRICS_PORT: '0',
        FEATURES_ADDRESS: featureService.address,
        // Generous: a loaded CI machine must not turn a slow feature read into a failed call (the default is 300 ms).
        FEATURES_TIMEOUT_MS: '5000',
        MODEL_POLL_INTERVAL_MS: '0',
        LOG_LEVEL: logLines ? 'info' : 'silent',
        ...env,
      }),
      ...override,
    };
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logLines?.push(...String(chunk).trim().split('\n'));
        done();
      },
    });
    const service = await startRankingService(config, createLogger('ranking', config.logLevel, destination), { clock });
    const client = createServiceClient(ranking.RankingService, service.address, { defaultTimeoutMs: 20_000 });
    running.push({ service, client });
    return { service, client };
  }

  const userIds = () => models.setup.dataset.users.ids;
  const itemIds = () => models.setup.dataset.items.ids;
  const candidates = (ids: readonly string[]) =>
    ids.map((itemId) => ({ itemId, channels: ['two_tower'], stageScores: [{ stage: common.Stage.PRERANKING, score: 0.5 }] }));
  /** `count` distinct catalogue items starting at `offset`. */
  const items = (count: number, offset = 0) => Array.from({ length: count }, (_, k) => itemIds()[(offset + k * 7) % itemIds().length]!);
  const scoresById = (response: ranking.RankResponse) => new Map(response.candidates.map((c) => [c.itemId, c.score]));

  async function metricsText(service: RunningRankingService): Promise<string> {
    return (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
  }

  it('scores every candidate with the DLRM on the stored features, best first, with the stage score appended', async () => {
    const root = modelRoot();
    const { client } = await start({ MODELS_DIR: root });
    const ids = [...items(30), 'never-stored-item'];
    const user = userIds()[5]!;
    const answer = await client.rank({ userId: user, candidates: candidates(ids) });
    expect(answer.modelVersion).toBe('1');
    expect(answer.missingItemIds).toEqual(['never-stored-item']);
    expect(answer.candidates).toHaveLength(ids.length);
    const scores = answer.candidates.map((c) => c.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const c of answer.candidates) {
      expect(c.channels).toEqual(['two_tower']);
      expect(c.stageScores.map((s) => [s.stage, s.score])).toEqual([
        [common.Stage.PRERANKING, 0.5],
        [common.Stage.RANKING, c.score],
      ]);
    }

    // The same scores from a bare session fed by the serving feature path (proven equal to the trainer's by serving-parity.spec).
    const version = await loadModelVersion(root, 'dlrm');
    const graph = version.manifest.graphs.model!;
    const session = await ModelSession.create(version.graphs.model!, graph.inputs, { label: 'bare dlrm' });
    try {
      const spec = version.manifest.featureSpecs.model!;
      const recent = spec.features.find((f) => f.name === 'recent_items');
      const history = recent?.kind === 'multi' ? recent.maxValues : 0;
      const state = await readUserState(featureClient, user, undefined, history, history);
      const rows = await readItemRows(featureClient, ids);
      const feeds = assembleFeeds(inputLayout(spec), { user: state.user, context: state.context, items: rows.rows });
      const bare = (await session.run(feeds))[graph.outputs[0]!.name]!;
      const served = scoresById(answer);
      ids.forEach((id, k) => expect(served.get(id)).toBe(bare[k]));
    } finally {
      await session.release();
    }

    const top = await client.rank({ userId: user, candidates: candidates(ids), limit: 5 });
    expect(top.candidates.map((c) => c.itemId)).toEqual(answer.candidates.slice(0, 5).map((c) => c.itemId));
    // A cold user is ranked on defaults; the request context still counts.
    const cold = await client.rank({ userId: `cold-${randomUUID()}`, candidates: candidates(ids.slice(0, 10)) });
    expect(cold.candidates).toHaveLength(10);
    const withContext = await client.rank({
      userId: `cold-${randomUUID()}`,
      candidates: candidates(ids.slice(0, 10)),
      context: { recentItems: ids.slice(10, 15).map((itemId) => ({ itemId })) },
    });
    expect(withContext.candidates.map((c) => c.score)).not.toEqual(cold.candidates.map((c) => c.score));
  });

  it('answers the same with the user passed down (user_state) as when it reads the user itself, and uses what it is given', async () => {
    const { client } = await start({ MODELS_DIR: modelRoot() });
    const ids = items(25, 3);
    const user = userIds()[7]!;
    const plain = await client.rank({ userId: user, candidates: candidates(ids) });
    const state = await featureClient.getUserFeatures({ userId: user, historyLimit: 100 });
    expect(state.history.length).toBeGreaterThan(0);
    const passed = await client.rank({ userId: user, candidates: candidates(ids), userState: state, userHistoryLimit: 100 });
    expect(passed.candidates).toEqual(plain.candidates);
    // Candidates carry each item's creation time as ranking read it with the features.
    expect(plain.candidates.every((c) => c.createdAtMs > 0n)).toBe(true);
    // A state read too shallow for the model: the stage reads the user itself, and answers the same.
    const shallow = await client.rank({
      userId: user,
      candidates: candidates(ids),
      userState: { ...state, history: [] },
      userHistoryLimit: 0,
    });
    expect(shallow.candidates).toEqual(plain.candidates);
    // A state deep enough is what the stage scores with: another history changes the scores (no read behind it).
    const other = await featureClient.getUserFeatures({ userId: userIds()[8]!, historyLimit: 100 });
    const doctored = await client.rank({
      userId: user,
      candidates: candidates(ids),
      userState: { ...state, history: other.history },
      userHistoryLimit: 100,
    });
    expect(doctored.candidates.map((c) => c.score)).not.toEqual(plain.candidates.map((c) => c.score));
    // Another user's state is refused, naming the field.
    await expect(client.rank({ userId: user, candidates: candidates(ids), userState: other, userHistoryLimit: 100 })).rejects.toMatchObject(
      {
        code: status.INVALID_ARGUMENT,
        details: expect.stringContaining('user_state.user.user_id'),
      },
    );
  });

  it('gives each request of a dynamic batch the scores of its lone unbatched run (within 1e-6; measured: 1 ULP)', async () => {
    const root = modelRoot();
    // Batches of at most 128 rows, so the larger requests also run in chunks.
    const batched = await start({ MODELS_DIR: root, RANKING_MAX_BATCH_SIZE: '128', RANKING_MAX_QUEUE_DELAY_MS: '3' });
    const lone = await start({ MODELS_DIR: root, RANKING_BATCHING: 'false', RANKING_MAX_BATCH_SIZE: '2048' });
    const sizes = [1, 3, 17, 64, 150, 200, 2, 90, 128, 40, 129, 7];
    const requests = Array.from({ length: 36 }, (_, r) => ({
      userId: userIds()[(r * 13) % userIds().length]!,
      candidates: candidates(items(sizes[r % sizes.length]!, r)),
    }));
    const concurrent = await Promise.all(requests.map((request) => batched.client.rank(request)));
    let compared = 0;
    let maxDiff = 0;
    for (const [r, request] of requests.entries()) {
      const alone = scoresById(await lone.client.rank(request));
      const together = scoresById(concurrent[r]!);
      expect([...together.keys()].sort()).toEqual([...alone.keys()].sort());
      for (const [id, score] of alone) maxDiff = Math.max(maxDiff, Math.abs(together.get(id)! - score));
      compared += alone.size;
    }
    expect(compared).toBeGreaterThan(1000);
    // Within 1e-6, not always bit-identical: onnxruntime's CPU GEMM picks its kernel and blocking by the
    // number of rows, so a row's sums may be added in another order in a batch of 300 than alone (a few ULPs).
    expect(maxDiff).toBeLessThan(1e-6);
    // The concurrent requests really shared runs: fewer runs than requests and chunks.
    const text = await metricsText(batched.service);
    const runs = Number(/ranking_batch_requests_count\{[^}]*\} (\d+)/.exec(text)?.[1]);
    const parts = Number(/ranking_batch_requests_sum\{[^}]*\} (\d+)/.exec(text)?.[1]);
    expect(runs).toBeGreaterThan(0);
    expect(parts).toBeGreaterThan(runs);
    expect(text).toMatch(/ranking_batch_rows_bucket\{le="128"[^}]*\} \d+/);
    expect(text).toMatch(/ranking_queue_wait_seconds_count\{[^}]*\} [1-9]/);
  });

  it('swaps in a version published during a stream of concurrent calls without failing any', async () => {
    const root = modelRoot();
    const { client } = await start({ MODELS_DIR: root, RANKING_MAX_QUEUE_DELAY_MS: '1' });
    const seen: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      let afterSwap = 0;
      while (!stop) {
        const answer = await client.rank({ userId: userIds()[w]!, candidates: candidates(items(50, w)) });
        expect(answer.candidates).toHaveLength(50);
        seen.push(answer.modelVersion);
        if (answer.modelVersion === '2' && ++afterSwap >= 5) stop = true;
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    while (seen.length < 20) await new Promise((r) => setTimeout(r, 5));
    publish(root, '2');
    // The file watch (poll off) finds it; every call before and after answers.
    await Promise.all(workers);
    expect(seen[0]).toBe('1');
    expect(seen.at(-1)).toBe('2');
    expect(new Set(seen)).toEqual(new Set(['1', '2']));
    expect((await client.getModelInfo({})).modelVersion).toBe('2');
  });

  it('refuses a corrupt version and keeps serving the old one', async () => {
    const root = modelRoot();
    const { service, client } = await start({ MODELS_DIR: root });
    const request = { userId: userIds()[1]!, candidates: candidates(items(20)) };
    const before = await client.rank(request);
    const infoBefore = await client.getModelInfo({});
    // A truncated model.onnx under the manifest's old checksum.
    publish(root, '2', (dir) => writeFileSync(join(dir, 'model.onnx'), readFileSync(join(dir, 'model.onnx')).subarray(0, 4096)));
    await service.checkModels();
    // A manifest whose checksum was changed to match garbage.
    publish(root, '3', (dir, manifest) => {
      writeFileSync(join(dir, 'model.onnx'), Buffer.alloc(2048, 7));
      manifest.graphs.model!.sha256 = sha256(Buffer.alloc(2048, 7));
    });
    await service.checkModels();
    const after = await client.rank(request);
    expect(after.modelVersion).toBe('1');
    expect(after.candidates).toEqual(before.candidates);
    expect(await client.getModelInfo({})).toEqual(infoBefore);
    expect(await metricsText(service)).toMatch(/ranking_model_reloads_total\{outcome="refused"[^}]*\} 2/);
  });

  it('falls back to the CPU when CUDA is configured but unavailable, and says so', async () => {
    const lines: string[] = [];
    const { client } = await start({ MODELS_DIR: modelRoot(), RANKING_EXECUTION_PROVIDERS: 'cuda,cpu' }, {}, lines);
    // This onnxruntime-node install carries no CUDA provider libraries, so cuda cannot load on any machine here.
    const info = await client.getModelInfo({});
    expect(info).toMatchObject({ modelName: 'dlrm', modelVersion: '1', executionProvider: 'cpu', maxBatchSize: 2048, maxQueueDelayMs: 1 });
    const logged = lines.map((l) => JSON.parse(l) as { level: string; msg: string; provider?: string });
    expect(logged.some((l) => l.level === 'warn' && l.msg === 'dlrm v1: cuda is unavailable')).toBe(true);
    expect(logged.some((l) => l.msg === 'dlrm v1 serves on cpu' && l.provider === 'cpu')).toBe(true);
    const answer = await client.rank({ userId: userIds()[0]!, candidates: candidates(items(5)) });
    expect(answer.candidates).toHaveLength(5);
  });

  it('refuses with RESOURCE_EXHAUSTED a request whose deadline the queue would pass, and when the queue is full', async () => {
    // Batches wait up to a minute for requests still reading their features: a queued request's wait is far beyond 5 s.
    const { service, client } = await start(
      { MODELS_DIR: modelRoot(), RANKING_MAX_BATCH_SIZE: '64', RANKING_MAX_QUEUE_LENGTH: '2' },
      { maxQueueDelayMs: 60_000 },
    );
    const lease = service.models.acquire();
    const batcher = lease.model.batcher;
    lease.release();
    const queued = async (n: number) => {
      while (batcher.queueLength < n) await new Promise((r) => setTimeout(r, 2));
    };
    // A place held as a request reading its features holds one: queued requests wait for it to join the batch.
    const arriving = batcher.reserve(10);
    const noDeadline = { timeoutMs: 0 };
    const first = client.rank({ userId: userIds()[2]!, candidates: candidates(items(40)) }, noDeadline);
    await queued(1);
    await expect(client.rank({ userId: userIds()[3]!, candidates: candidates(items(10)) }, { timeoutMs: 5000 })).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(
        /^expected wait for inference [\d.]+ ms \(40 rows ahead\) exceeds the [\d.]+ ms left before the deadline$/,
      ),
    });
    const second = client.rank({ userId: userIds()[4]!, candidates: candidates(items(10)) }, noDeadline);
    await queued(2);
    await expect(client.rank({ userId: userIds()[5]!, candidates: candidates(items(5)) }, noDeadline)).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: 'the inference queue is full (2 requests waiting); retry later',
    });
    const text = await metricsText(service);
    // What a KEDA ScaledObject scales on: the queue's depth and the calls in flight (the refused ones are done).
    expect(text).toMatch(/^ranking_queue_depth\{service="ranking"\} 2$/m);
    expect(text).toMatch(/^grpc_server_in_flight_requests\{service="ranking"\} 2$/m);
    expect(text).toMatch(/ranking_rejected_total\{reason="deadline"[^}]*\} 1/);
    expect(text).toMatch(/ranking_rejected_total\{reason="queue_full"[^}]*\} 1/);
    // Once nobody else is on the way, the waiting batch runs: the queued requests are answered.
    arriving.cancel();
    expect((await first).candidates).toHaveLength(40);
    expect((await second).candidates).toHaveLength(10);
    expect(await metricsText(service)).toMatch(/^ranking_queue_depth\{service="ranking"\} 0$/m);
  });

  it('serves repeated candidates from its item cache with the answers of an uncached service, and sees changes after the TTLs', async () => {
    const root = modelRoot();
    let now = 1_000;
    // The item cache alone (no item table): every candidate is read through it.
    const cached = await start({ MODELS_DIR: root, ITEM_TABLE_MAX_ITEMS: '0' }, {}, undefined, () => now);
    const uncached = await start({ MODELS_DIR: root, ITEM_CACHE_SIZE: '0', ITEM_TABLE_MAX_ITEMS: '0' });
    // Items of this test only: the other tests share the feature service.
    const record = itemRecords(models.setup)[7]!;
    const changing = `changing-${randomUUID()}`;
    const late = `late-${randomUUID()}`;
    await featureClient.upsertItems({ items: [{ ...record, itemId: changing }] });
    const request = { userId: userIds()[9]!, candidates: candidates([changing, late, ...items(40, 3)]) };

    const first = await cached.client.rank(request);
    expect(first.missingItemIds).toEqual([late]);
    expect(first).toEqual(await uncached.client.rank(request));
    expect(await cached.client.rank(request)).toEqual(first);
    const text = await metricsText(cached.service);
    expect(text).toMatch(/ranking_item_cache_misses_total\{[^}]*\} 42\n/);
    expect(text).toMatch(/ranking_item_cache_hits_total\{[^}]*\} 42\n/);
    expect(text).toMatch(/ranking_item_cache_items\{[^}]*\} 42\n/);
    expect(await metricsText(uncached.service)).toMatch(/ranking_item_cache_misses_total\{[^}]*\} 42\n/);

    // The feature service changes one item and learns the unknown one: the uncached service sees both at once.
    await featureClient.upsertItems({
      items: [
        {
          itemId: changing,
          category: 'a-new-category',
          features: { values: { price: { kind: { case: 'numeric', value: 1e6 } } } },
        },
        { ...record, itemId: late },
      ],
    });
    const fresh = await uncached.client.rank(request);
    expect(fresh.missingItemIds).toEqual([]);
    expect(scoresById(fresh).get(changing)).not.toBe(scoresById(first).get(changing));
    // Within both TTLs the cached service still answers from what it read.
    now += 4_999;
    expect(await cached.client.rank(request)).toEqual(first);
    // The unknown item is asked for again after ITEM_CACHE_MISSING_TTL_MS (5 s), the others after ITEM_CACHE_TTL_MS (60 s).
    now += 1;
    const lateFound = scoresById(await cached.client.rank(request));
    expect(lateFound.get(late)).toBe(scoresById(fresh).get(late));
    expect(lateFound.get(changing)).toBe(scoresById(first).get(changing));
    now += 55_000;
    expect(await cached.client.rank(request)).toEqual(fresh);
  });

  it('reads every stored item into a table at load, equal to the feature service, and scores from it without item reads', async () => {
    const root = modelRoot();
    const record = itemRecords(models.setup)[3]!;
    const changing = `table-changing-${randomUUID()}`;
    await featureClient.upsertItems({ items: [{ ...record, itemId: changing }] });
    const { service, client } = await start({ MODELS_DIR: root });
    // The reference: no table, no cache (every candidate read from the feature service per request).
    const reference = await start({ MODELS_DIR: root, ITEM_CACHE_SIZE: '0', ITEM_TABLE_MAX_ITEMS: '0' });
    const lease = service.models.acquire();
    const model = lease.model;
    lease.release();
    const table = model.items.table!;
    expect(table).toBeDefined();

    // Every catalogue item, encoded from the feature service's protobuf answer, equals its table row.
    const ids = [...itemIds(), changing];
    const { rows } = await readItemRows(featureClient, ids);
    const { codeWidth: cw, valueWidth: vw } = model.assembler;
    expect(cw).toBeGreaterThan(0);
    ids.forEach((id, k) => {
      const row = table.ids.rowOf(id);
      expect(row).toBeGreaterThanOrEqual(0);
      const encoded = model.assembler.encodeItem(rows[k]!);
      expect(Array.from(table.codesOf(row))).toEqual(Array.from(encoded.subarray(0, cw)));
      expect(Array.from(table.valuesOf(row))).toEqual(Array.from(Float32Array.from(encoded.subarray(cw))));
      expect(table.valuesOf(row).length).toBe(vw);
      expect(table.createdAtOf(row)).toBe(Number(rows[k]!.get('created_at') ?? 0));
    });

    // Served from the table: the reference's answer, and no item read through the cache.
    const request = { userId: userIds()[4]!, candidates: candidates([changing, ...items(30, 5)]) };
    const first = await client.rank(request);
    expect(first).toEqual(await reference.client.rank(request));
    let text = await metricsText(service);
    expect(text).toMatch(/ranking_item_table_hits_total\{[^}]*\} 31\n/);
    expect(text).not.toMatch(/ranking_item_cache_misses_total\{[^}]*\} [1-9]/);

    // An item stored after the table was read is read through (once, then cached) and scored as the reference does.
    const fresh = `table-fresh-${randomUUID()}`;
    await featureClient.upsertItems({ items: [{ ...itemRecords(models.setup)[8]!, itemId: fresh }] });
    const withFresh = { userId: userIds()[4]!, candidates: candidates([fresh, ...items(10, 2)]) };
    const answer = await client.rank(withFresh);
    expect(answer.missingItemIds).toEqual([]);
    expect(answer).toEqual(await reference.client.rank(withFresh));
    text = await metricsText(service);
    expect(text).toMatch(/ranking_item_cache_misses_total\{[^}]*\} 1\n/);

    // A changed item: this version's table keeps what it read; a new version reads a new table, with the change.
    await featureClient.upsertItems({
      items: [
        {
          itemId: changing,
          category: record.category,
          createdAtMs: record.createdAtMs,
          features: { values: { ...record.features?.values, price: { kind: { case: 'numeric', value: 1e6 } } } },
        },
      ],
    });
    const changed = await reference.client.rank(request);
    expect(scoresById(changed).get(changing)).not.toBe(scoresById(first).get(changing));
    expect(await client.rank(request)).toEqual(first);
    publish(root, '2');
    const until = Date.now() + 60_000;
    while ((await client.getModelInfo({})).modelVersion !== '2') {
      if (Date.now() > until) throw new Error('version 2 was not loaded within 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const next = service.models.acquire();
    const swapped = next.model.items.table!;
    next.release();
    expect(swapped).not.toBe(table);
    expect(swapped.size).toBe(table.size + 1);
    const afterSwap = await client.rank(request);
    expect(afterSwap.modelVersion).toBe('2');
    expect(afterSwap.candidates.map((c) => [c.itemId, c.score])).toEqual(changed.candidates.map((c) => [c.itemId, c.score]));
  });

  it('names the field of an invalid request', async () => {
    const { client } = await start({ MODELS_DIR: modelRoot(), RANKING_MAX_CANDIDATES: '50' });
    const cases: [Parameters<RankingClient['rank']>[0], string][] = [
      [{ userId: '', candidates: candidates(items(2)) }, 'user_id: must not be empty'],
      [{ userId: 'u', candidates: [] }, 'candidates: must not be empty'],
      [{ userId: 'u', candidates: candidates(items(51)) }, 'candidates: at most 50 per request (got 51); split the request'],
      [{ userId: 'u', candidates: candidates(['a', '', 'c']) }, 'candidates[1].item_id: must not be empty'],
      [{ userId: 'u', candidates: candidates(['a', 'b', 'a']) }, 'candidates[2].item_id: "a" repeats candidates[0]'],
      [{ userId: 'u', candidates: candidates(['a\n']) }, 'candidates[0].item_id: must not contain control characters'],
      [{ userId: 'u', candidates: candidates(['a']), limit: -1 }, 'limit: must be >= 0 (0 returns every candidate)'],
    ];
    for (const [request, details] of cases) {
      await expect(client.rank(request)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details });
    }
  });

  it('answers UNAVAILABLE, naming the feature service, when it cannot be reached', async () => {
    const { client } = await start({
      MODELS_DIR: modelRoot(),
      FEATURES_ADDRESS: `127.0.0.1:${await freePort()}`,
      FEATURES_TIMEOUT_MS: '500',
    });
    await expect(client.rank({ userId: 'u', candidates: candidates(items(3)) })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('ranking needs item features, so it does not score without them'),
    });
  });
});
