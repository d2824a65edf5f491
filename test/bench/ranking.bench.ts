// Ranking throughput (items/s) and latency through the service: gRPC into the ranking service as its own
// process, which reads a feature-service process on a real Redis and runs the DLRM, at concurrency 1, 8
// and 32, with dynamic batching and without (two service processes), against a bare onnxruntime-node
// session on the same model and pre-assembled inputs of the same size, in one run. Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { features, ranking } from '@recsys/contracts';
import { createServiceClient, freePort, type ServiceClient, waitForServing } from '@recsys/service-kit';
import { assembleFeeds, loadFeatures, loadModelVersion, readItemRows, readUserState } from '@recsys/serving';
import { builtEntry, RedisServer, startNode } from '@recsys/testing';
import { DEFAULT_SYNTHETIC, type DataSource, inputLayout, loadSetup, trainRun } from '@recsys/trainer';
import * as ort from 'onnxruntime-node';
import { quantile, round, rssMiB } from './stats';

const CANDIDATES = Number(process.env.BENCH_CANDIDATES ?? 300);
/** Requests per concurrency level and side, spread over the rounds. */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 480);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CONCURRENCY = [1, 8, 32];
/** Distinct requests (user and candidates) cycled through. */
const DISTINCT = 64;

type RankingClient = ServiceClient<typeof ranking.RankingService.method>;

interface Block {
  latencies: number[];
  ms: number;
  items: number;
}

const nowMs = () => performance.now();

/** `n` requests from `c` callers, each sending its next request when its previous answer arrives. */
async function closedLoop(c: number, n: number, send: (i: number) => Promise<number>): Promise<Block> {
  const latencies: number[] = [];
  let next = 0;
  let items = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = nowMs();
        const answered = await send(i);
        latencies.push(nowMs() - t0);
        items += answered;
      }
    }),
  );
  return { latencies, ms: nowMs() - started, items };
}

async function modelRoot(): Promise<{ root: string; source: DataSource; temporary: boolean }> {
  const given = process.env.BENCH_MODELS_DIR;
  if (given) {
    const dlrm = await loadModelVersion(given, 'dlrm');
    return { root: given, source: dlrm.manifest.data.source, temporary: false };
  }
  const root = mkdtempSync(join(tmpdir(), 'recsys-bench-ranking-'));
  const source: DataSource = { kind: 'synthetic', options: DEFAULT_SYNTHETIC };
  const started = nowMs();
  await trainRun(source, {
    out: root,
    seed: 1,
    retrieval: { epochs: 1 },
    ranking: { epochs: Number(process.env.BENCH_EPOCHS ?? 2) },
    preranking: { epochs: 1 },
    compareUncorrected: false,
  });
  console.log(`trained on the default synthetic data in ${round((nowMs() - started) / 1000, 1)} s into ${root}`);
  return { root, source, temporary: true };
}

async function main(): Promise<void> {
  const { root, source, temporary } = await modelRoot();
  const setup = loadSetup(source);
  const { users, items } = setup.dataset;
  if (items.ids.length < CANDIDATES) throw new Error(`${CANDIDATES} candidates need as many items; the data has ${items.ids.length}`);

  const redis = await RedisServer.start();
  const featuresPort = await freePort();
  const featuresAddress = `127.0.0.1:${featuresPort}`;
  const featureProcess = startNode(builtEntry('services/features/dist/main.js'), {
    GRPC_PORT: String(featuresPort),
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
  });
  const rankingMain = builtEntry('services/ranking/dist/main.js');
  const services: Record<'batched' | 'unbatched', { process: ReturnType<typeof startNode>; client: RankingClient; address: string }> =
    {} as never;
  const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 60_000 });
  let session: ort.InferenceSession | undefined;
  try {
    await waitForServing(featuresAddress, 20_000);
    const loaded = await loadFeatures(featureClient, setup);
    console.log(`feature service: ${loaded.users} users, ${loaded.items} items, ${loaded.events} history events on Redis`);

    for (const [side, env] of [
      ['batched', {}],
      ['unbatched', { RANKING_BATCHING: 'false' }],
    ] as const) {
      const port = await freePort();
      const address = `127.0.0.1:${port}`;
      const child = startNode(rankingMain, {
        GRPC_PORT: String(port),
        FEATURES_ADDRESS: featuresAddress,
        MODELS_DIR: root,
        MODEL_POLL_INTERVAL_MS: '0',
        LOG_LEVEL: 'warn',
        ...env,
      });
      services[side] = {
        process: child,
        address,
        client: createServiceClient(ranking.RankingService, address, { defaultTimeoutMs: 30_000 }),
      };
    }
    for (const { address } of Object.values(services)) await waitForServing(address, 30_000);
    const info = await services.batched.client.getModelInfo({});

    // Requests: a user and CANDIDATES distinct items each, from a fixed seed.
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const requests = Array.from({ length: DISTINCT }, () => {
      const chosen = new Set<string>();
      while (chosen.size < CANDIDATES) chosen.add(items.ids[Math.floor(random() * items.ids.length)]!);
      return { userId: users.ids[Math.floor(random() * users.ids.length)]!, candidates: [...chosen].map((itemId) => ({ itemId })) };
    });

    // The bare session: the same graph, one request's inputs per run, assembled beforehand from the same features.
    const dlrm = await loadModelVersion(root, 'dlrm');
    const spec = dlrm.manifest.featureSpecs.model!;
    const recent = spec.features.find((f) => f.name === 'recent_items');
    const history = recent?.kind === 'multi' ? recent.maxValues : 0;
    const layout = inputLayout(spec);
    const bareFeeds = await Promise.all(
      requests.map(async (request) => {
        const state = await readUserState(featureClient, request.userId, undefined, history, Math.max(history, 1));
        const rows = await readItemRows(
          featureClient,
          request.candidates.map((c) => c.itemId),
        );
        const feeds = assembleFeeds(layout, { user: state.user, context: state.context, items: rows.rows });
        return Object.fromEntries(
          Object.entries(feeds).map(([name, t]) => [
            name,
            new ort.Tensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape),
          ]),
        );
      }),
    );
    session = await ort.InferenceSession.create(dlrm.graphs.model!, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    const bare = session;
    const runBare = async (i: number) => {
      await bare.run(bareFeeds[i % DISTINCT]!);
      return CANDIDATES;
    };
    const rank = (client: RankingClient) => async (i: number) => (await client.rank(requests[i % DISTINCT]!)).candidates.length;

    // Warm-up: every path, every distinct request once.
    await closedLoop(1, DISTINCT, runBare);
    for (const side of Object.values(services)) await closedLoop(8, DISTINCT, rank(side.client));

    const bareBlocks: Block[] = [];
    const served: Record<string, Block[]> = {};
    const perBlock = Math.ceil(REQUESTS / ROUNDS);
    // Rounds rotate the order of the sides, so none inherits the others' garbage or a colder cache more often.
    for (let r = 0; r < ROUNDS; r++) {
      (globalThis as { gc?: () => void }).gc?.();
      bareBlocks.push(await closedLoop(1, perBlock, runBare));
      for (const c of CONCURRENCY) {
        const sides = (['batched', 'unbatched'] as const).slice();
        if ((r + c) % 2 === 1) sides.reverse();
        for (const side of sides) {
          (globalThis as { gc?: () => void }).gc?.();
          const block = await closedLoop(c, perBlock, rank(services[side].client));
          (served[`${side}_c${c}`] ??= []).push(block);
        }
      }
    }

    const throughput = (blocks: Block[]) => blocks.reduce((s, b) => s + b.items, 0) / (blocks.reduce((s, b) => s + b.ms, 0) / 1000);
    const latencies = (blocks: Block[]) => blocks.flatMap((b) => b.latencies);
    const result: Record<string, number | string | boolean> = {
      candidates: CANDIDATES,
      requests_per_level: perBlock * ROUNDS,
      model_version: info.modelVersion,
      provider: info.executionProvider,
      max_batch_size: info.maxBatchSize,
      max_queue_delay_ms: info.maxQueueDelayMs,
      cores: availableParallelism(),
      bare_items_per_s: Math.round(throughput(bareBlocks)),
      bare_p50_ms: round(quantile(latencies(bareBlocks), 0.5)),
    };
    for (const c of CONCURRENCY) {
      const batched = served[`batched_c${c}`]!;
      const unbatched = served[`unbatched_c${c}`]!;
      result[`items_per_s_c${c}`] = Math.round(throughput(batched));
      result[`p50_ms_c${c}`] = round(quantile(latencies(batched), 0.5));
      result[`p99_ms_c${c}`] = round(quantile(latencies(batched), 0.99));
      result[`items_per_s_c${c}_unbatched`] = Math.round(throughput(unbatched));
      result[`p50_ms_c${c}_unbatched`] = round(quantile(latencies(unbatched), 0.5));
      result[`p99_ms_c${c}_unbatched`] = round(quantile(latencies(unbatched), 0.99));
    }
    result.ratio_c32 = round((result.items_per_s_c32 as number) / (result.bare_items_per_s as number), 3);
    result.ratio_c32_unbatched = round((result.items_per_s_c32_unbatched as number) / (result.bare_items_per_s as number), 3);
    result.ranking_rss_mib = rssMiB(services.batched.process.child.pid!);
    result.features_rss_mib = rssMiB(featureProcess.child.pid!);
    for (const c of CONCURRENCY) {
      console.log(
        `c=${c}: batched ${result[`items_per_s_c${c}`]} items/s, p99 ${result[`p99_ms_c${c}`]} ms; ` +
          `unbatched ${result[`items_per_s_c${c}_unbatched`]} items/s, p99 ${result[`p99_ms_c${c}_unbatched`]} ms`,
      );
    }
    console.log(`bare session: ${result.bare_items_per_s} items/s (${CANDIDATES} per run); service/bare at c=32: ${result.ratio_c32}`);
    console.log(JSON.stringify(result));
  } finally {
    await session?.release();
    featureClient.close();
    for (const side of Object.values(services)) {
      side.client.close();
      side.process.child.kill('SIGTERM');
      await side.process.exited;
    }
    featureProcess.child.kill('SIGTERM');
    await featureProcess.exited;
    await redis.destroy();
    if (temporary) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
