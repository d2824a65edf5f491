// Retrieve through the retrieval service's gRPC API (a separate process, an embedded HNSW index over BENCH_ITEMS
// item vectors, the user tower, a feature-service process) against exact brute-force search over the same vectors
// for the same user embeddings, in one run. Last line: one JSON object.
//
// Everything searched is real model output: a two-tower is trained here on synthetic data with BENCH_ITEMS items
// (cached under BENCH_MODELS_DIR, keyed by the data and training settings, so a rerun skips training), its exported
// item vectors are the catalogue, recsys-index's builder publishes the index (payload and query sample from the
// feature service), and the queries are the user embeddings the service answers for the data set's users (users of
// the index's query sample left out). Every server starts with the V8 flags deployed servers start with, and the
// timed calls come from a small process of their own (retrieve-calls), so this process's heap stays out of them.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type JsonValue, toJson } from '@bufbuild/protobuf';
import { features, retrieval } from '@recsys/contracts';
import { loadGatewayConfig } from '@recsys/gateway';
import { buildIndexVersion, DEFAULT_QUERY_SAMPLE, pickQueryUsers, trainedUserIds } from '@recsys/retrieval';
import { createServiceClient, freePort, SERVING_NODE_FLAGS, waitForServing } from '@recsys/service-kit';
import { loadModelVersion, readItemVectors } from '@recsys/serving';
import { loadFeatures } from '@recsys/offline';
import { builtEntry, runNode, startNode } from '@recsys/testing';
import { type DataSource, loadSetup, trainRun } from '@recsys/trainer';
import {
  DEFAULT_EXPANSION_PER_RESULT,
  DEFAULT_HNSW_PARAMS,
  exactSearch,
  GRAPH_QUANTIZATIONS,
  openHnswIndex,
  type GraphQuantization,
  type HnswParams,
} from '@recsys/vector-index';
import type { CallsInput, CallsOutput } from './retrieve-calls';
import { quantile, round, rssMiB, timeMs } from './stats';
import { envNumber } from '../harness/script-env';

const ITEMS = envNumber('BENCH_ITEMS', 1_000_000);
const USERS = envNumber('BENCH_USERS', 50_000);
const INTERACTIONS = envNumber('BENCH_INTERACTIONS', 20);
const EPOCHS = envNumber('BENCH_EPOCHS', 1);
const REQUESTS = envNumber('BENCH_REQUESTS', 300);
const WARMUP = envNumber('BENCH_WARMUP', 50, 'whole');
const QUERY_SAMPLE = envNumber('BENCH_QUERY_SAMPLE', DEFAULT_QUERY_SAMPLE, 'whole');
const QUANTIZATION = (process.env.BENCH_QUANTIZATION ?? DEFAULT_HNSW_PARAMS.quantization) as GraphQuantization;
if (!GRAPH_QUANTIZATIONS.includes(QUANTIZATION)) throw new Error(`BENCH_QUANTIZATION must be one of ${GRAPH_QUANTIZATIONS.join(', ')}`);
const HNSW: HnswParams = {
  connectivity: envNumber('BENCH_CONNECTIVITY', DEFAULT_HNSW_PARAMS.connectivity),
  expansionAdd: envNumber('BENCH_EXPANSION_ADD', DEFAULT_HNSW_PARAMS.expansionAdd),
  expansionSearch: envNumber('BENCH_EXPANSION_SEARCH', DEFAULT_HNSW_PARAMS.expansionSearch),
  quantization: QUANTIZATION,
};
/** The search's per-result rule: the service's INDEX_EXPANSION_PER_RESULT (default the library's). */
const PER_RESULT = envNumber('BENCH_EXPANSION_PER_RESULT', DEFAULT_EXPANSION_PER_RESULT, 'positive');
const MODELS_CACHE = process.env.BENCH_MODELS_DIR ?? join(tmpdir(), 'recsys-bench-models');
/**
 * Optional: built indexes are kept here, keyed by the model and the build settings, and reused (the search settings
 * reach the service as INDEX_EXPANSION_SEARCH / INDEX_EXPANSION_PER_RESULT, so one build serves every search setting).
 */
const INDEX_CACHE = process.env.BENCH_INDEX_CACHE;
/**
 * Optional in-process sweep over search settings on the same index and embeddings, "ef:perResult" pairs separated by
 * commas (e.g. "128:1,256:2"): searchNow's time for the two_tower quota and its recall@100, without the service.
 */
const SWEEP = (process.env.BENCH_SWEEP ?? '')
  .split(',')
  .filter(Boolean)
  .map((pair) => {
    const [ef, per] = pair.split(':').map(Number);
    if (!Number.isInteger(ef) || !(ef! > 0) || !(per! >= 1)) throw new Error(`BENCH_SWEEP: "${pair}" is not ef:perResult`);
    return { expansionSearch: ef!, expansionPerResult: per! };
  });
/** NODE_OPTIONS of the retrieval service only (e.g. "--cpu-prof --cpu-prof-dir=DIR" or "--require FILE"). */
const SERVICE_NODE_OPTIONS = process.env.BENCH_SERVICE_NODE_OPTIONS;
/**
 * Extra node flags on the retrieval service's command line, after the serving flags every deployed server starts
 * with (service-kit's SERVING_NODE_FLAGS), separated by spaces: flags node refuses in NODE_OPTIONS, e.g. "--trace-gc".
 */
const SERVICE_NODE_FLAGS = (process.env.BENCH_SERVICE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
/** Optional: another build of the retrieval service to measure (e.g. a base commit's dist/main.js), for A/B runs. */
const SERVICE_ENTRY = process.env.BENCH_RETRIEVAL_ENTRY ?? builtEntry('services/retrieval/dist/main.js');
/** Optional: the retrieval service's stdout and stderr are written to this file at the end (e.g. with --trace-gc). */
const SERVICE_LOG = process.env.BENCH_SERVICE_LOG;
const K = 100;
const SEED = 11;

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

const range = (n: number) => Array.from({ length: n }, (_, k) => k);

/** Runs retrieve-calls (a process of its own) over the phases and reads back what it recorded. */
async function runCalls(work: string, input: CallsInput): Promise<CallsOutput> {
  const inputPath = join(work, 'calls-in.json');
  const outputPath = join(work, 'calls-out.json');
  writeFileSync(inputPath, JSON.stringify(input));
  const exit = await runNode(join(__dirname, 'retrieve-calls.js'), [inputPath, outputPath], {}, 600_000);
  if (exit.code !== 0) throw new Error(`retrieve-calls exited (${exit.code ?? exit.signal}):\n${exit.stderr}${exit.stdout}`);
  return JSON.parse(readFileSync(outputPath, 'utf8')) as CallsOutput;
}

/** A two-tower trained on the bench's data, from the cache when this configuration was trained before. */
async function twoTowerModels(source: DataSource): Promise<{ root: string; reused: boolean; trainSeconds: number }> {
  const key = `two-tower-s${SEED}-u${USERS}-i${ITEMS}-x${INTERACTIONS}-e${EPOCHS}`;
  const root = join(MODELS_CACHE, key);
  if (existsSync(join(root, 'READY'))) return { root, reused: true, trainSeconds: 0 };
  mkdirSync(MODELS_CACHE, { recursive: true });
  const staging = mkdtempSync(join(MODELS_CACHE, `.staging-${key}-`));
  const started = process.hrtime.bigint();
  try {
    await trainRun(source, {
      out: staging,
      seed: 1,
      models: ['two-tower'],
      retrieval: { epochs: EPOCHS },
      compareUncorrected: false,
      log: (line) => console.log(line),
    });
    writeFileSync(join(staging, 'READY'), `${new Date().toISOString()}\n`);
    rmSync(root, { recursive: true, force: true });
    renameSync(staging, root);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  return { root, reused: false, trainSeconds: seconds(started) };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'recsys-bench-retrieval-'));
  const indexRoot = join(work, 'index');
  const log = (line: string) => console.log(line);

  const source: DataSource = { kind: 'synthetic', options: { seed: SEED, users: USERS, items: ITEMS, interactionsPerUser: INTERACTIONS } };
  const models = await twoTowerModels(source);
  const model = await loadModelVersion(models.root, 'two-tower');
  const { ids, vectors, dim } = await readItemVectors(model);
  log(
    `two-tower ${model.version} ${models.reused ? `reused from ${models.root}` : `trained in ${round(models.trainSeconds, 1)} s into ${models.root}`}: ` +
      `${ids.length} items, dimension ${dim}`,
  );
  if (ids.length !== ITEMS) throw new Error(`the model holds ${ids.length} item vectors, expected ${ITEMS}`);
  const setup = loadSetup(source);

  const featuresPort = await freePort();
  const featuresAddress = `127.0.0.1:${featuresPort}`;
  // The in-memory feature store: this measures retrieval, not Redis.
  const featuresMetricsPort = await freePort();
  const featureProcess = startNode(
    builtEntry('services/features/dist/main.js'),
    { GRPC_PORT: String(featuresPort), METRICS_PORT: String(featuresMetricsPort), LOG_LEVEL: 'warn' },
    SERVING_NODE_FLAGS,
  );
  const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 60_000 });
  let service: ReturnType<typeof startNode> | undefined;
  let closeClient: (() => void) | undefined;
  try {
    await waitForServing(featuresAddress, 20_000);
    let started = process.hrtime.bigint();
    const loaded = await loadFeatures(featureClient, setup);
    const loadSeconds = seconds(started);
    log(`feature service: ${loaded.users} users, ${loaded.items} items, ${loaded.events} history events in ${round(loadSeconds, 1)} s`);

    // The production path: recsys-index's builder, payload and query sample from the feature service.
    const indexKey = `${basename(models.root)}-m${HNSW.connectivity}-a${HNSW.expansionAdd}-${HNSW.quantization}-q${QUERY_SAMPLE}`;
    const cached = INDEX_CACHE === undefined ? undefined : join(INDEX_CACHE, indexKey);
    let built: { querySample: number; seconds: { querySample: number; publish: number } };
    let indexReused = false;
    if (cached !== undefined && existsSync(join(cached, 'built.json'))) {
      cpSync(join(cached, 'index'), indexRoot, { recursive: true });
      built = JSON.parse(readFileSync(join(cached, 'built.json'), 'utf8')) as typeof built;
      indexReused = true;
      log(`index reused from ${cached} (built in ${round(built.seconds.publish, 1)} s then)`);
    } else {
      built = await buildIndexVersion({
        modelsDir: models.root,
        target: { kind: 'embedded', root: indexRoot },
        payloadReader: featureClient,
        queryReader: featureClient,
        querySample: QUERY_SAMPLE,
        hnsw: HNSW,
        log,
      });
      if (cached !== undefined) {
        rmSync(cached, { recursive: true, force: true });
        cpSync(indexRoot, join(cached, 'index'), { recursive: true });
        writeFileSync(join(cached, 'built.json'), JSON.stringify({ querySample: built.querySample, seconds: built.seconds }));
      }
    }
    const buildSeconds = built.seconds.publish;
    log(
      `index of ${ITEMS} items built in ${round(buildSeconds, 1)} s (M ${HNSW.connectivity}, efConstruction ${HNSW.expansionAdd}, ` +
        `${HNSW.quantization}; query sample of ${built.querySample} users in ${round(built.seconds.querySample, 1)} s)`,
    );

    // The service's port drawn just before it listens: drawn before the index build, it stayed free long enough for
    // another process drawing ports (a parallel test) to take it first.
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const client = createServiceClient(retrieval.RetrievalService, address, { defaultTimeoutMs: 30_000 });
    closeClient = () => client.close();
    started = process.hrtime.bigint();
    service = startNode(
      SERVICE_ENTRY,
      {
        GRPC_PORT: String(port),
        MODELS_DIR: models.root,
        INDEX_DIR: indexRoot,
        FEATURES_ADDRESS: featuresAddress,
        INDEX_POLL_MS: '0',
        INDEX_EXPANSION_SEARCH: String(HNSW.expansionSearch),
        INDEX_EXPANSION_PER_RESULT: String(PER_RESULT),
        ...(SERVICE_NODE_OPTIONS !== undefined ? { NODE_OPTIONS: SERVICE_NODE_OPTIONS } : {}),
        LOG_LEVEL: 'warn',
        // Bounds failures on a shared machine; they never shape the figures.
        FEATURES_TIMEOUT_MS: '2000',
        CHANNEL_TIMEOUT_MS: '5000',
      },
      [...SERVING_NODE_FLAGS, ...SERVICE_NODE_FLAGS],
    );
    const running = service;
    // A service that exits (a bad index, a port taken) ends the wait at once, with its output.
    await Promise.race([
      waitForServing(address, 600_000),
      running.exited.then((exit) => {
        throw new Error(`the retrieval service exited (${exit.code ?? exit.signal}) before serving:\n${exit.stderr}${exit.stdout}`);
      }),
    ]);
    const startSeconds = seconds(started);
    const info = await client.getIndexInfo({});
    if (Number(info.size) !== ITEMS) throw new Error(`the service serves ${info.size} items, expected ${ITEMS}`);

    // Users whose embeddings shaped the graph are not queried: recall is measured on users it has not seen.
    const sampled = new Set(pickQueryUsers(trainedUserIds(model), QUERY_SAMPLE));
    const users = setup.dataset.users.ids.filter((user) => !sampled.has(user));
    if (users.length === 0) throw new Error(`every user is in the query sample: raise BENCH_USERS above BENCH_QUERY_SAMPLE`);
    const request = (n: number) => ({ userId: users[(n * 13) % users.length]!, limit: 200 });
    // The same users, two-tower channel only, seen items kept: the service's ANN top 100 for each embedding.
    const only = [
      { channel: 'two_tower', limit: K },
      { channel: 'popular', limit: 0 },
      { channel: 'item_to_item', limit: 0 },
    ];
    const annRequest = (n: number) => ({ ...request(n), limit: K, quotas: only, includeSeen: true });
    // The same requests carrying the user as the pipeline's gateway passes it down (GetUserFeatures' answer, read once
    // with the gateway's history limit): the service reads no user, as in the pipeline.
    const historyLimit = loadGatewayConfig({ AUTH_DISABLED: 'true' }).userHistoryLimit;
    const passedRequests: JsonValue[] = [];
    for (let n = 0; n < REQUESTS; n++) {
      const base = request(WARMUP + n);
      const userState = await featureClient.getUserFeatures({ userId: base.userId, historyLimit });
      passedRequests.push({
        ...base,
        userState: toJson(features.GetUserFeaturesResponseSchema, userState),
        userHistoryLimit: historyLimit,
      });
    }
    (globalThis as { gc?: () => void }).gc?.();

    // The calls come from a small process of their own (retrieve-calls): timed here, this process's collections
    // (its heap holds the catalogue) would be in the latency. Full requests first (three channels, user state, user
    // tower, merge): the service's latency, and its CPU (every thread, usearch's included), which the other jobs on
    // a shared machine do not inflate as they do the latency.
    const callsInput: CallsInput = {
      address,
      servicePid: running.child.pid!,
      featureMetricsUrl: `http://127.0.0.1:${featuresMetricsPort}/metrics`,
      phases: [
        { name: 'full', warmup: range(WARMUP).map(request), requests: range(REQUESTS).map((n) => request(WARMUP + n)) },
        { name: 'passed', warmup: [], requests: passedRequests },
        { name: 'two_tower', warmup: [], requests: range(REQUESTS).map((n) => annRequest(WARMUP + n)) },
      ],
    };
    const calls = await runCalls(work, callsInput);
    const [full, passed, twoTowerOnly] = calls.phases;
    const passedLatency = passed!.calls.map((call) => call.ms);
    passed!.calls.forEach((call, n) => {
      if (call.embedding.some((v, j) => v !== full!.calls[n]!.embedding[j])) {
        throw new Error(`request ${n}: the user embedding with the user passed down differs from the one read by the service`);
      }
    });
    const latency = full!.calls.map((call) => call.ms);
    const serviceCpuMs = full!.serviceCpuMs / REQUESTS;
    let failedChannels = 0;
    const channelMs: Record<string, number[]> = { two_tower: [], popular: [], item_to_item: [] };
    for (const call of full!.calls) {
      failedChannels += call.channels.filter((r) => r.error !== '').length;
      for (const report of call.channels) channelMs[report.channel]?.push(report.durationMs);
    }
    const queries = full!.calls.map((call) => Float32Array.from(call.embedding));
    const annOnly = twoTowerOnly!.calls.map((call) => call.ms);
    const annIds = twoTowerOnly!.calls.map((call, n) => {
      if (call.embedding.some((v, j) => v !== queries[n]![j])) throw new Error(`request ${n}: the user embedding changed between calls`);
      return call.candidates;
    });

    // Exact brute force over the same vectors for the same embeddings: the baseline and the ground truth.
    const exact: number[] = [];
    const truths: Set<string>[] = [];
    const truths200: Set<string>[] = [];
    let hits = 0;
    for (let n = 0; n < REQUESTS; n++) {
      let truth: { row: number }[] = [];
      exact.push(await timeMs(() => Promise.resolve((truth = exactSearch(vectors, dim, 'ip', queries[n]!, K)))));
      truths.push(new Set(truth.map(({ row }) => ids[row]!)));
      if (SWEEP.length > 0) truths200.push(new Set(exactSearch(vectors, dim, 'ip', queries[n]!, 200).map(({ row }) => ids[row]!)));
      const ann = new Set(annIds[n]);
      for (const { row } of truth) if (ann.has(ids[row]!)) hits++;
    }

    // The same index version opened here with each swept setting: the search alone, for the full request's two_tower
    // quota (the limit of 200) and its recall@100, with the same embeddings; and item-to-item's: five item vectors
    // searched in one batch for 100 neighbours each (the channel's default), recall@100 against exact search.
    const SEEDS = SWEEP.length === 0 ? 0 : 100;
    const seedRows = Array.from({ length: SEEDS }, (_, n) => (n * 7919 + 13) % ids.length);
    const seedVector = (row: number) => vectors.slice(row * dim, (row + 1) * dim);
    const seedTruths = seedRows.map(
      (row) => new Set(exactSearch(vectors, dim, 'ip', seedVector(row), K, { accept: (r) => r !== row }).map((m) => ids[m.row]!)),
    );
    const sweep = [];
    for (const setting of SWEEP) {
      const store = await openHnswIndex(join(indexRoot, info.indexVersion), { ...setting, verify: 'size', mode: 'view' });
      for (let n = 0; n < WARMUP; n++) store.searchNow(queries[n % REQUESTS]!, 200);
      const ms: number[] = [];
      let found = 0;
      let found200 = 0;
      for (let n = 0; n < REQUESTS; n++) {
        const started = process.hrtime.bigint();
        const hits200 = store.searchNow(queries[n]!, 200);
        ms.push(Number(process.hrtime.bigint() - started) / 1e6);
        for (const hit of hits200) if (truths200[n]!.has(hit.id)) found200++;
        for (const hit of store.searchNow(queries[n]!, K)) if (truths[n]!.has(hit.id)) found++;
      }
      const batchMs: number[] = [];
      let seedFound = 0;
      for (let n = 0; n + 5 <= SEEDS; n += 5) {
        const rows = seedRows.slice(n, n + 5);
        const excludeIds = new Set(rows.map((row) => ids[row]!));
        const started = process.hrtime.bigint();
        const lists = store.searchBatchNow(rows.map(seedVector), K, { excludeIds });
        batchMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        // Each seed's own list against its exact neighbours (the other seeds excluded from both, as the channel does).
        lists.forEach((hits, j) => {
          for (const hit of hits) if (seedTruths[n + j]!.has(hit.id)) seedFound++;
        });
      }
      await store.close();
      sweep.push({
        ...setting,
        search_p50_ms: round(quantile(ms, 0.5)),
        search_p99_ms: round(quantile(ms, 0.99)),
        'recall@100': round(found / (REQUESTS * K), 4),
        'recall@200': round(found200 / (REQUESTS * 200), 4),
        item_batch5_p50_ms: round(quantile(batchMs, 0.5)),
        'item_recall@100': round(seedFound / (SEEDS * K), 4),
      });
      log(`sweep ${JSON.stringify(sweep.at(-1))}`);
    }

    const p50 = quantile(latency, 0.5);
    const exactP50 = quantile(exact, 0.5);
    const result = {
      items: ITEMS,
      users: USERS,
      dim,
      requests: REQUESTS,
      p50_ms: round(p50),
      p90_ms: round(quantile(latency, 0.9)),
      p99_ms: round(quantile(latency, 0.99)),
      max_ms: round(Math.max(...latency)),
      service_cpu_ms_per_request: round(serviceCpuMs, 2),
      feature_calls_per_request: round(full!.featureCalls / REQUESTS, 2),
      passed_user: {
        p50_ms: round(quantile(passedLatency, 0.5)),
        p90_ms: round(quantile(passedLatency, 0.9)),
        p99_ms: round(quantile(passedLatency, 0.99)),
        max_ms: round(Math.max(...passedLatency)),
        service_cpu_ms_per_request: round(passed!.serviceCpuMs / REQUESTS, 2),
        feature_calls_per_request: round(passed!.featureCalls / REQUESTS, 2),
      },
      two_tower_only_p50_ms: round(quantile(annOnly, 0.5)),
      'ann_recall@100': round(hits / (REQUESTS * K), 4),
      exact_p50_ms: round(exactP50),
      ratio_p50: round(exactP50 / p50, 2),
      channel_p50_ms: Object.fromEntries(Object.entries(channelMs).map(([channel, ms]) => [channel, round(quantile(ms, 0.5))])),
      channel_p99_ms: Object.fromEntries(Object.entries(channelMs).map(([channel, ms]) => [channel, round(quantile(ms, 0.99))])),
      failed_channel_reports: failedChannels,
      hnsw: HNSW,
      expansion_per_result: PER_RESULT,
      sweep,
      index_reused: indexReused,
      query_sample: built.querySample,
      build_s: round(buildSeconds, 1),
      load_features_s: round(loadSeconds, 1),
      service_start_s: round(startSeconds, 1),
      service_rss_mib: rssMiB(running.child.pid!),
      bench_rss_mib: rssMiB(),
      model_reused: models.reused,
      train_s: round(models.trainSeconds, 1),
      model_version: model.version,
      service_entry: SERVICE_ENTRY,
    };
    console.log(
      `Retrieve ${result.p50_ms} ms p50 / ${result.p99_ms} ms p99 over ${ITEMS} items (user read by the service), ` +
        `${result.passed_user.p50_ms} / ${result.passed_user.p99_ms} ms with the user passed down; exact search ${result.exact_p50_ms} ms p50; ` +
        `ANN recall@${K} ${result['ann_recall@100']} (figures from 2 shared cores: noisy)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    closeClient?.();
    featureClient.close();
    service?.child.kill('SIGTERM');
    featureProcess.child.kill('SIGTERM');
    await Promise.all([service?.exited, featureProcess.exited]);
    if (SERVICE_LOG !== undefined && service !== undefined) writeFileSync(SERVICE_LOG, service.output());
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
