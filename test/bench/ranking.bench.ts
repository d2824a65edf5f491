// Ranking throughput (items/s) and latency through the service: gRPC into the ranking service as its own
// process, which reads a feature-service process on a real Redis and runs the DLRM, at concurrency 1, 8
// and 32, as configured by default (dynamic batching, item table and cache on), without dynamic batching, and
// without the item table and cache (every item read per request; three service processes), against a bare onnxruntime-node session on the same
// model and pre-assembled inputs of the same size, in one run. Every request asks for a fresh random set of
// candidates from a catalogue of BENCH_CATALOGUE items (the trained ones and copies of their features under
// new ids), so the hit rate (candidates served from the item table or cache), which is reported, is that of a
// catalogue of that size. Each request carries its user's features and history as the gateway passes them (read
// once per user before the timed blocks, as the bare session's inputs are assembled beforehand), so the ranking
// service makes no feature call for the user; BENCH_PASS_USER=false sends the user id alone and the service reads the
// user itself. CPU per request of each process is reported too. Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { common, features, fieldNumber, fieldTag, ranking, WIRE } from '@recsys/contracts';
import { loadGatewayConfig } from '@recsys/gateway';
import { loadRankingConfig } from '@recsys/ranking';
import { createServiceClient, freePort, type ServiceClient, waitForServing, WireReader } from '@recsys/service-kit';
import { assembleFeeds, loadModelVersion } from '@recsys/serving';
import { readItemRows, readUserState } from '@recsys/stage';
import { itemRecords, loadFeatures } from '@recsys/offline';
import { builtEntry, RedisServer, startNode } from '@recsys/testing';
import { DEFAULT_SYNTHETIC, type DataSource, inputLayout, loadSetup, trainRun } from '@recsys/trainer';
import * as ort from 'onnxruntime-node';
import { cpuMicros, cpuMsOf, quantile, round, rssMiB } from './stats';
import { envNumber } from '../harness/script-env';

const CANDIDATES = envNumber('BENCH_CANDIDATES', 300);
/** Requests per concurrency level and side, spread over the rounds. */
const REQUESTS = envNumber('BENCH_REQUESTS', 480);
const ROUNDS = envNumber('BENCH_ROUNDS', 4);
const CONCURRENCY = [1, 8, 32];
/** Items the candidates are drawn from (at least the trained catalogue). */
const CATALOGUE = envNumber('BENCH_CATALOGUE', 50_000);
/** Pre-assembled requests the bare session cycles through. */
const DISTINCT = 64;
/** Requests carry the user's state as the gateway passes it down (see the header). */
const PASS_USER = (process.env.BENCH_PASS_USER ?? 'true') !== 'false';
const SIDES = ['batched', 'unbatched', 'uncached'] as const;
type Side = (typeof SIDES)[number];
/** Each side's service settings beyond the defaults. */
const SIDE_ENV: Record<Side, Record<string, string>> = {
  batched: {},
  unbatched: { RANKING_BATCHING: 'false' },
  uncached: { ITEM_CACHE_SIZE: '0', ITEM_TABLE_MAX_ITEMS: '0' },
};

type RankingClient = ServiceClient<typeof ranking.RankingService.method>;

interface Block {
  latencies: number[];
  ms: number;
  items: number;
}

const clientCpuMs = () => cpuMicros() / 1000;

/** A counter's value in a Prometheus text exposition (0 when absent). */
async function counter(metricsPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
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
    ranking: { epochs: envNumber('BENCH_EPOCHS', 2) },
    preranking: { epochs: 1 },
    compareUncorrected: false,
  });
  console.log(`trained on the default synthetic data in ${round((nowMs() - started) / 1000, 1)} s into ${root}`);
  return { root, source, temporary: true };
}

const USER_ID = fieldTag(ranking.RankRequestSchema, 'userId', WIRE.length);
const CANDIDATE = fieldTag(ranking.RankRequestSchema, 'candidates', WIRE.length);
const ITEM_ID = fieldTag(common.CandidateSchema, 'itemId', WIRE.length);
const ANSWER_CANDIDATES = fieldNumber(ranking.RankResponseSchema, 'candidates');

/** A RankRequest of ASCII ids (every id here) as bytes: user_id, then one Candidate { item_id } per id, then the passed user. */
function rankRequestBytes(request: { userId: string; candidates: { itemId: string }[] }, user?: Uint8Array): Uint8Array {
  // One-byte lengths: ids here are short ASCII.
  if ([request.userId, ...request.candidates.map((c) => c.itemId)].some((id) => id.length > 120 || /[^\x20-\x7e]/.test(id))) {
    throw new Error('rankRequestBytes writes short ASCII ids only');
  }
  let size = 2 + request.userId.length + (user?.length ?? 0);
  for (const { itemId } of request.candidates) size += 4 + itemId.length;
  const out = new Uint8Array(size);
  let pos = 0;
  out[pos++] = USER_ID;
  out[pos++] = request.userId.length;
  for (let k = 0; k < request.userId.length; k++) out[pos++] = request.userId.charCodeAt(k);
  for (const { itemId } of request.candidates) {
    out[pos++] = CANDIDATE;
    out[pos++] = itemId.length + 2;
    out[pos++] = ITEM_ID;
    out[pos++] = itemId.length;
    for (let k = 0; k < itemId.length; k++) out[pos++] = itemId.charCodeAt(k);
  }
  if (user !== undefined) {
    out.set(user, pos);
    pos += user.length;
  }
  return out.subarray(0, pos);
}

/** The candidates in a RankResponse's bytes, counted without decoding them. */
function countCandidates(bytes: Uint8Array): number {
  const reader = new WireReader(bytes);
  let n = 0;
  while (!reader.done) {
    const tag = reader.tag();
    if (tag >>> 3 === ANSWER_CANDIDATES) n++;
    reader.skip(tag & 7, tag >>> 3);
  }
  return n;
}

async function main(): Promise<void> {
  const { root, source, temporary } = await modelRoot();
  const setup = loadSetup(source);
  const { users } = setup.dataset;
  const trained = itemRecords(setup);
  const catalogueSize = Math.max(CATALOGUE, trained.length);
  if (catalogueSize < CANDIDATES) throw new Error(`${CANDIDATES} candidates need as many items; the catalogue has ${catalogueSize}`);
  // The trained items, then copies of their features under new ids (the DLRM scores an id it never saw as unknown).
  const catalogue = Array.from({ length: catalogueSize }, (_, k) =>
    k < trained.length ? trained[k]!.itemId! : `${trained[k % trained.length]!.itemId}~${Math.floor(k / trained.length)}`,
  );
  const itemCache = loadRankingConfig({}).itemCache;

  const redis = await RedisServer.start();
  const featuresPort = await freePort();
  const featuresAddress = `127.0.0.1:${featuresPort}`;
  const featureProcess = startNode(builtEntry('services/features/dist/main.js'), {
    GRPC_PORT: String(featuresPort),
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
  });
  // Another build of the service (BENCH_RANKING_MAIN, e.g. of an earlier commit) measures a change A/B against this bench.
  const rankingMain = process.env.BENCH_RANKING_MAIN ?? builtEntry('services/ranking/dist/main.js');
  const services = {} as Record<
    Side,
    { process: ReturnType<typeof startNode>; client: RankingClient; address: string; metricsPort: number }
  >;
  const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 60_000 });
  let session: ort.InferenceSession | undefined;
  try {
    await waitForServing(featuresAddress, 20_000);
    const loaded = await loadFeatures(featureClient, setup);
    for (let start = trained.length; start < catalogueSize; start += 1000) {
      const ids = catalogue.slice(start, Math.min(catalogueSize, start + 1000));
      await featureClient.upsertItems({ items: ids.map((itemId, j) => ({ ...trained[(start + j) % trained.length]!, itemId })) });
    }
    console.log(
      `feature service: ${loaded.users} users, ${catalogueSize} items (${loaded.items} trained), ${loaded.events} history events on Redis`,
    );

    for (const side of SIDES) {
      const port = await freePort();
      const metricsPort = await freePort();
      const address = `127.0.0.1:${port}`;
      const child = startNode(rankingMain, {
        GRPC_PORT: String(port),
        METRICS_PORT: String(metricsPort),
        FEATURES_ADDRESS: featuresAddress,
        MODELS_DIR: root,
        MODEL_POLL_INTERVAL_MS: '0',
        LOG_LEVEL: 'warn',
        ...SIDE_ENV[side],
      });
      services[side] = {
        process: child,
        address,
        metricsPort,
        client: createServiceClient(ranking.RankingService, address, { defaultTimeoutMs: 30_000 }),
      };
    }
    for (const { address } of Object.values(services)) await waitForServing(address, 30_000);
    const info = await services.batched.client.getModelInfo({});

    // Request i: a user and CANDIDATES distinct catalogue items, drawn uniformly from a seed of its own.
    const requestFor = (i: number) => {
      let seed = (Math.imul(i, 2654435761) + 12345) >>> 0;
      const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
      const chosen = new Set<string>();
      while (chosen.size < CANDIDATES) chosen.add(catalogue[Math.floor(random() * catalogueSize)]!);
      return { userId: users.ids[Math.floor(random() * users.ids.length)]!, candidates: [...chosen].map((itemId) => ({ itemId })) };
    };
    // Every block of every side gets requests no block asked before: a cache hit is an item another request asked for.
    let nextRequest = 0;

    // The bare session: the same graph, one request's inputs per run, assembled beforehand from the same features.
    const dlrm = await loadModelVersion(root, 'dlrm');
    const spec = dlrm.manifest.featureSpecs.model!;
    const recent = spec.features.find((f) => f.name === 'recent_items');
    const history = recent?.kind === 'multi' ? recent.maxValues : 0;
    const layout = inputLayout(spec);
    const bareFeeds = await Promise.all(
      Array.from({ length: DISTINCT }, async (_, i) => {
        const request = requestFor(-1 - i);
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
    // The load generator shares the two cores with the services: it writes each request's bytes itself and counts the
    // answer's candidates without decoding them (protobuf-es on both ends cost it ~1.6 ms of CPU per request).
    // Each user's state as the gateway would pass it (GetUserFeatures' answer, read with the gateway's history limit).
    const historyLimit = loadGatewayConfig({ AUTH_DISABLED: 'true' }).userHistoryLimit;
    const passed = new Map<string, Uint8Array>();
    if (PASS_USER) {
      for (const userId of users.ids) {
        const userState = await featureClient.getUserFeatures({ userId, historyLimit });
        // Only RankRequest's user_state and user_history_limit, appended after the other fields (any order is valid).
        passed.set(
          userId,
          toBinary(ranking.RankRequestSchema, create(ranking.RankRequestSchema, { userState, userHistoryLimit: historyLimit })),
        );
      }
    }
    // A block's `n` requests, written before it starts (as the bare session's inputs are), then sent in turn.
    const rank = (client: RankingClient, n: number) => {
      const first = nextRequest;
      nextRequest += 1_000_000;
      const bodies = Array.from({ length: n }, (_, i) => {
        const request = requestFor(first + i);
        return rankRequestBytes(request, passed.get(request.userId));
      });
      return async (i: number) => countCandidates(await client.raw('rank', bodies[i]!));
    };

    // Warm-up: every path, then as many requests again on each service.
    await closedLoop(1, DISTINCT, runBare);
    for (const side of Object.values(services)) await closedLoop(8, DISTINCT, rank(side.client, DISTINCT));

    const cacheCounters = async () => ({
      // Served from memory: the item table's rows (every item stored before the service started) and the cache.
      hits:
        (await counter(services.batched.metricsPort, 'ranking_item_cache_hits_total')) +
        (await counter(services.batched.metricsPort, 'ranking_item_table_hits_total')),
      misses: await counter(services.batched.metricsPort, 'ranking_item_cache_misses_total'),
    });
    const cacheBefore = await cacheCounters();
    const bareBlocks: Block[] = [];
    const served: Record<string, Block[]> = {};
    const cpu: Record<Side, { ranking: number; features: number; client: number; requests: number }> = {
      batched: { ranking: 0, features: 0, client: 0, requests: 0 },
      unbatched: { ranking: 0, features: 0, client: 0, requests: 0 },
      uncached: { ranking: 0, features: 0, client: 0, requests: 0 },
    };
    const perBlock = Math.ceil(REQUESTS / ROUNDS);
    // Rounds rotate the order of the sides, so none inherits the others' garbage or a colder cache more often.
    for (let r = 0; r < ROUNDS; r++) {
      (globalThis as { gc?: () => void }).gc?.();
      bareBlocks.push(await closedLoop(1, perBlock, runBare));
      for (const c of CONCURRENCY) {
        const shift = (r + c) % SIDES.length;
        for (const side of [...SIDES.slice(shift), ...SIDES.slice(0, shift)]) {
          (globalThis as { gc?: () => void }).gc?.();
          const pid = services[side].process.child.pid!;
          const send = rank(services[side].client, perBlock);
          const before = { ranking: cpuMsOf(pid), features: cpuMsOf(featureProcess.child.pid!), client: clientCpuMs() };
          const block = await closedLoop(c, perBlock, send);
          cpu[side].ranking += cpuMsOf(pid) - before.ranking;
          cpu[side].features += cpuMsOf(featureProcess.child.pid!) - before.features;
          cpu[side].client += clientCpuMs() - before.client;
          cpu[side].requests += perBlock;
          (served[`${side}_c${c}`] ??= []).push(block);
        }
      }
    }
    const cacheAfter = await cacheCounters();
    const hits = cacheAfter.hits - cacheBefore.hits;
    const lookups = hits + cacheAfter.misses - cacheBefore.misses;

    const throughput = (blocks: Block[]) => blocks.reduce((s, b) => s + b.items, 0) / (blocks.reduce((s, b) => s + b.ms, 0) / 1000);
    const latencies = (blocks: Block[]) => blocks.flatMap((b) => b.latencies);
    const result: Record<string, number | string | boolean> = {
      candidates: CANDIDATES,
      catalogue_items: catalogueSize,
      requests_per_level: perBlock * ROUNDS,
      // The user's state came with each request (the pipeline's path), or the service read it per request.
      user_passed: PASS_USER,
      // Where the ranking service's session runs (RANKING_SESSION_THREAD, as the services were started).
      session_thread: loadRankingConfig(process.env).sessionThread,
      model_version: info.modelVersion,
      provider: info.executionProvider,
      max_batch_size: info.maxBatchSize,
      max_queue_delay_ms: info.maxQueueDelayMs,
      // The default configuration ("batched"); "uncached" runs with ITEM_CACHE_SIZE=0 and ITEM_TABLE_MAX_ITEMS=0.
      // An earlier build without the cache exports no cache counters.
      item_cache: itemCache.maxItems > 0 && lookups > 0,
      item_cache_size: itemCache.maxItems,
      item_cache_ttl_ms: itemCache.ttlMs,
      item_cache_hit_rate: lookups > 0 ? round(hits / lookups) : 0,
      cores: availableParallelism(),
      load_average_1m: round(loadavg()[0]!, 2),
      bare_items_per_s: Math.round(throughput(bareBlocks)),
      bare_p50_ms: round(quantile(latencies(bareBlocks), 0.5)),
    };
    for (const c of CONCURRENCY) {
      for (const side of SIDES) {
        const blocks = served[`${side}_c${c}`]!;
        const suffix = side === 'batched' ? '' : `_${side}`;
        result[`items_per_s_c${c}${suffix}`] = Math.round(throughput(blocks));
        result[`p50_ms_c${c}${suffix}`] = round(quantile(latencies(blocks), 0.5));
        result[`p99_ms_c${c}${suffix}`] = round(quantile(latencies(blocks), 0.99));
      }
    }
    for (const side of SIDES) {
      const suffix = side === 'batched' ? '' : `_${side}`;
      result[`ratio_c32${suffix}`] = round((result[`items_per_s_c32${suffix}`] as number) / (result.bare_items_per_s as number), 3);
    }
    for (const side of SIDES) {
      const suffix = side === 'batched' ? '' : `_${side}`;
      const { requests } = cpu[side];
      result[`cpu_ms_per_request_ranking${suffix}`] = round(cpu[side].ranking / requests, 2);
      result[`cpu_ms_per_request_features${suffix}`] = round(cpu[side].features / requests, 2);
      result[`cpu_ms_per_request_client${suffix}`] = round(cpu[side].client / requests, 2);
    }
    result.ranking_rss_mib = rssMiB(services.batched.process.child.pid!);
    result.features_rss_mib = rssMiB(featureProcess.child.pid!);
    for (const c of CONCURRENCY) {
      console.log(
        `c=${c}: ` +
          SIDES.map((side) => {
            const suffix = side === 'batched' ? '' : `_${side}`;
            return `${side} ${result[`items_per_s_c${c}${suffix}`]} items/s, p99 ${result[`p99_ms_c${c}${suffix}`]} ms`;
          }).join('; '),
      );
    }
    console.log(
      `item cache (batched): ${itemCache.maxItems} items, ${itemCache.ttlMs} ms; hit rate ${result.item_cache_hit_rate} over ${catalogueSize} items`,
    );
    console.log(
      `CPU ms per request (ranking / features / bench client): ` +
        SIDES.map((side) => {
          const suffix = side === 'batched' ? '' : `_${side}`;
          return `${side} ${result[`cpu_ms_per_request_ranking${suffix}`]} / ${result[`cpu_ms_per_request_features${suffix}`]} / ${result[`cpu_ms_per_request_client${suffix}`]}`;
        }).join('; '),
    );
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
