// Retrieve through the retrieval service's gRPC API (a separate process, an embedded HNSW index over BENCH_ITEMS
// item vectors, the user tower, a feature-service process) against exact brute-force search over the same vectors
// for the same user embeddings, in one run. Last line: one JSON object.
//
// Everything searched is real model output: a two-tower is trained here on synthetic data with BENCH_ITEMS items
// (cached under BENCH_MODELS_DIR, keyed by the data and training settings, so a rerun skips training), its exported
// item vectors are the catalogue, recsys-index's builder publishes the index (payload and query sample from the
// feature service), and the queries are the user embeddings the service answers for the data set's users (users of
// the index's query sample left out).
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { features, retrieval } from '@recsys/contracts';
import { buildIndexVersion, DEFAULT_QUERY_SAMPLE, pickQueryUsers, trainedUserIds } from '@recsys/retrieval';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { loadModelVersion, readItemVectors } from '@recsys/serving';
import { loadFeatures } from '@recsys/offline';
import { builtEntry, startNode } from '@recsys/testing';
import { type DataSource, loadSetup, trainRun } from '@recsys/trainer';
import { DEFAULT_HNSW_PARAMS, exactSearch } from '@recsys/vector-index';
import { quantile, round, rssMiB, timeMs } from './stats';

const env = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${process.env[name]}"`);
  return value;
};
const ITEMS = env('BENCH_ITEMS', 1_000_000);
const USERS = env('BENCH_USERS', 50_000);
const INTERACTIONS = env('BENCH_INTERACTIONS', 20);
const EPOCHS = env('BENCH_EPOCHS', 1);
const REQUESTS = env('BENCH_REQUESTS', 300);
const WARMUP = env('BENCH_WARMUP', 50);
const QUERY_SAMPLE = env('BENCH_QUERY_SAMPLE', DEFAULT_QUERY_SAMPLE);
const HNSW = {
  connectivity: env('BENCH_CONNECTIVITY', DEFAULT_HNSW_PARAMS.connectivity),
  expansionAdd: env('BENCH_EXPANSION_ADD', DEFAULT_HNSW_PARAMS.expansionAdd),
  expansionSearch: env('BENCH_EXPANSION_SEARCH', DEFAULT_HNSW_PARAMS.expansionSearch),
};
const MODELS_CACHE = process.env.BENCH_MODELS_DIR ?? join(tmpdir(), 'recsys-bench-models');
const K = 100;
const SEED = 11;

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

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
  const featureProcess = startNode(builtEntry('services/features/dist/main.js'), { GRPC_PORT: String(featuresPort), LOG_LEVEL: 'warn' });
  const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 60_000 });
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  let service: ReturnType<typeof startNode> | undefined;
  const client = createServiceClient(retrieval.RetrievalService, address, { defaultTimeoutMs: 30_000 });
  try {
    await waitForServing(featuresAddress, 20_000);
    let started = process.hrtime.bigint();
    const loaded = await loadFeatures(featureClient, setup);
    const loadSeconds = seconds(started);
    log(`feature service: ${loaded.users} users, ${loaded.items} items, ${loaded.events} history events in ${round(loadSeconds, 1)} s`);

    // The production path: recsys-index's builder, payload and query sample from the feature service.
    const built = await buildIndexVersion({
      modelsDir: models.root,
      target: { kind: 'embedded', root: indexRoot },
      payloadReader: featureClient,
      queryReader: featureClient,
      querySample: QUERY_SAMPLE,
      hnsw: HNSW,
      log,
    });
    const buildSeconds = built.seconds.publish;
    log(
      `index of ${ITEMS} items built in ${round(buildSeconds, 1)} s (M ${HNSW.connectivity}, efConstruction ${HNSW.expansionAdd}; ` +
        `query sample of ${built.querySample} users in ${round(built.seconds.querySample, 1)} s)`,
    );

    started = process.hrtime.bigint();
    service = startNode(builtEntry('services/retrieval/dist/main.js'), {
      GRPC_PORT: String(port),
      MODELS_DIR: models.root,
      INDEX_DIR: indexRoot,
      FEATURES_ADDRESS: featuresAddress,
      INDEX_POLL_MS: '0',
      LOG_LEVEL: 'warn',
      // Bounds failures on a shared machine; they never shape the figures.
      FEATURES_TIMEOUT_MS: '2000',
      CHANNEL_TIMEOUT_MS: '5000',
    });
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
    let failedChannels = 0;
    for (let n = 0; n < WARMUP; n++) await client.retrieve(request(n));
    (globalThis as { gc?: () => void }).gc?.();

    // Full requests (three channels, user state, user tower, merge): the service's latency.
    const latency: number[] = [];
    const channelMs: Record<string, number[]> = { two_tower: [], popular: [], item_to_item: [] };
    const queries: Float32Array[] = [];
    for (let n = 0; n < REQUESTS; n++) {
      let answer: retrieval.RetrieveResponse | undefined;
      latency.push(await timeMs(async () => (answer = await client.retrieve(request(WARMUP + n)))));
      failedChannels += answer!.channels.filter((r) => r.error !== '').length;
      for (const report of answer!.channels) channelMs[report.channel]?.push(report.durationMs);
      queries.push(Float32Array.from(answer!.userEmbedding));
    }

    // The same users, two-tower channel only, seen items kept: the service's ANN top 100 for each embedding.
    const annOnly: number[] = [];
    const annIds: string[][] = [];
    const only = [
      { channel: 'two_tower', limit: K },
      { channel: 'popular', limit: 0 },
      { channel: 'item_to_item', limit: 0 },
    ];
    for (let n = 0; n < REQUESTS; n++) {
      let answer: retrieval.RetrieveResponse | undefined;
      annOnly.push(
        await timeMs(async () => (answer = await client.retrieve({ ...request(WARMUP + n), limit: K, quotas: only, includeSeen: true }))),
      );
      const embedding = Float32Array.from(answer!.userEmbedding);
      if (embedding.some((v, j) => v !== queries[n]![j])) throw new Error(`request ${n}: the user embedding changed between calls`);
      annIds.push(answer!.candidates.map((c) => c.itemId));
    }

    // Exact brute force over the same vectors for the same embeddings: the baseline and the ground truth.
    const exact: number[] = [];
    let hits = 0;
    for (let n = 0; n < REQUESTS; n++) {
      let truth: { row: number }[] = [];
      exact.push(await timeMs(() => Promise.resolve((truth = exactSearch(vectors, dim, 'ip', queries[n]!, K)))));
      const ann = new Set(annIds[n]);
      for (const { row } of truth) if (ann.has(ids[row]!)) hits++;
    }

    const p50 = quantile(latency, 0.5);
    const exactP50 = quantile(exact, 0.5);
    const result = {
      items: ITEMS,
      users: USERS,
      dim,
      requests: REQUESTS,
      p50_ms: round(p50),
      p99_ms: round(quantile(latency, 0.99)),
      two_tower_only_p50_ms: round(quantile(annOnly, 0.5)),
      'ann_recall@100': round(hits / (REQUESTS * K), 4),
      exact_p50_ms: round(exactP50),
      ratio_p50: round(exactP50 / p50, 2),
      channel_p50_ms: Object.fromEntries(Object.entries(channelMs).map(([channel, ms]) => [channel, round(quantile(ms, 0.5))])),
      failed_channel_reports: failedChannels,
      hnsw: HNSW,
      query_sample: built.querySample,
      build_s: round(buildSeconds, 1),
      load_features_s: round(loadSeconds, 1),
      service_start_s: round(startSeconds, 1),
      service_rss_mib: rssMiB(running.child.pid!),
      bench_rss_mib: rssMiB(),
      model_reused: models.reused,
      train_s: round(models.trainSeconds, 1),
      model_version: model.version,
    };
    console.log(
      `Retrieve ${result.p50_ms} ms p50 / ${result.p99_ms} ms p99 over ${ITEMS} items; exact search ${result.exact_p50_ms} ms p50; ` +
        `ANN recall@${K} ${result['ann_recall@100']} (figures from 2 shared cores: noisy)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    client.close();
    featureClient.close();
    service?.child.kill('SIGTERM');
    featureProcess.child.kill('SIGTERM');
    await Promise.all([service?.exited, featureProcess.exited]);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
