// Retrieve through the retrieval service's gRPC API (a separate process, embedded HNSW index over BENCH_ITEMS
// item vectors, a real user tower, a feature-service process) against exact brute-force search over the same
// vectors for the same user embeddings, in one run. Last line: one JSON object.
//
// What is real and what is synthetic: a small two-tower is trained here on modest synthetic data (the trainer's
// test data set); the index holds its item vectors for its catalogue, padded to BENCH_ITEMS with synthetic
// L2-normalised vectors clustered around those trained item vectors (items like the trained ones, so the user
// embeddings meet a catalogue shaped like the one they were trained against), recorded as that two-tower version
// so the service serves it with that version's user tower. Queries are the user tower's embeddings of the data
// set's users.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { features, retrieval } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { loadFeatures, loadModelVersion, readItemVectors } from '@recsys/serving';
import { builtEntry, startNode, TEST_DATA } from '@recsys/testing';
import { loadSetup, trainRun } from '@recsys/trainer';
import { DEFAULT_HNSW_PARAMS, exactSearch, publishIndex, type ItemPayload } from '@recsys/vector-index';
import { quantile, round, rssMiB, timeMs } from './stats';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 1_000_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 50);
const K = 100;
/** Per-vector noise around its trained item, relative to the unit length (spread / √dim per coordinate). */
const SPREAD = Number(process.env.BENCH_SPREAD ?? 1);
/** The service's INDEX_EXPANSION_SEARCH; unset keeps the index's own beam width. */
const EXPANSION_SEARCH = process.env.BENCH_EXPANSION_SEARCH;

const { cos, log, PI, sqrt } = Math;

/** `count` unit vectors, each a random trained item vector plus Gaussian noise, renormalised; seeded. */
function aroundItems(centres: Float32Array, dim: number, count: number, spread: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => sqrt(-2 * log(1 - uniform())) * cos(2 * PI * uniform());
  const centresCount = centres.length / dim;
  const out = new Float32Array(count * dim);
  const scale = spread / sqrt(dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    const centre = Math.floor(uniform() * centresCount) * dim;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      row[j] = centres[centre + j]! + scale * normal();
      norm += row[j]! * row[j]!;
    }
    const inverse = 1 / sqrt(norm);
    for (let j = 0; j < dim; j++) out[i * dim + j] = row[j]! * inverse;
  }
  return out;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'recsys-bench-retrieval-'));
  const modelsRoot = join(work, 'models');
  const indexRoot = join(work, 'index');
  const log = (line: string) => console.log(line);

  // A real two-tower (with its user tower), trained on the small synthetic test data.
  let started = process.hrtime.bigint();
  const setup = loadSetup(TEST_DATA);
  await trainRun(TEST_DATA, {
    out: modelsRoot,
    seed: 1,
    retrieval: { epochs: 3, batchSize: 128 },
    ranking: { epochs: 1 },
    preranking: { epochs: 1 },
    compareUncorrected: false,
  });
  const model = await loadModelVersion(modelsRoot, 'two-tower');
  const trained = await readItemVectors(model);
  const trainSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`two-tower ${model.version} trained in ${round(trainSeconds, 1)} s: ${trained.ids.length} items, dimension ${trained.dim}`);
  if (ITEMS < trained.ids.length) throw new Error(`BENCH_ITEMS must be at least the trained catalogue (${trained.ids.length})`);

  // The catalogue: the trained item vectors, then synthetic clustered unit vectors up to ITEMS.
  const { dim } = trained;
  const padding = ITEMS - trained.ids.length;
  const vectors = new Float32Array(ITEMS * dim);
  vectors.set(trained.vectors);
  vectors.set(aroundItems(trained.vectors, dim, padding, SPREAD, 7), trained.vectors.length);
  const ids = [...trained.ids, ...Array.from({ length: padding }, (_, n) => `syn-${n}`)];
  const category = setup.dataset.items.columns.category;
  const payload: ItemPayload[] = ids.map((_, row) =>
    row < trained.ids.length && category?.kind === 'categorical'
      ? { category: category.values[row]! }
      : { category: `syn-cat-${row % 20}` },
  );
  started = process.hrtime.bigint();
  await publishIndex(
    { kind: 'embedded', root: indexRoot },
    { ids, vectors, dim, metric: 'ip', payload, version: '1', modelVersion: model.version },
  );
  const buildSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`index of ${ITEMS} items built in ${round(buildSeconds, 1)} s`);

  const featuresPort = await freePort();
  const featuresAddress = `127.0.0.1:${featuresPort}`;
  // The in-memory feature store: this measures retrieval, not Redis.
  const featureProcess = startNode(builtEntry('services/features/dist/main.js'), { GRPC_PORT: String(featuresPort), LOG_LEVEL: 'warn' });
  const featureClient = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 30_000 });
  await waitForServing(featuresAddress, 20_000);
  await loadFeatures(featureClient, setup);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  started = process.hrtime.bigint();
  const service = startNode(builtEntry('services/retrieval/dist/main.js'), {
    GRPC_PORT: String(port),
    MODELS_DIR: modelsRoot,
    INDEX_DIR: indexRoot,
    FEATURES_ADDRESS: featuresAddress,
    INDEX_POLL_MS: '0',
    ...(EXPANSION_SEARCH ? { INDEX_EXPANSION_SEARCH: EXPANSION_SEARCH } : {}),
    LOG_LEVEL: 'warn',
    // Bounds failures on a shared machine; they never shape the figures.
    FEATURES_TIMEOUT_MS: '2000',
    CHANNEL_TIMEOUT_MS: '5000',
  });
  const client = createServiceClient(retrieval.RetrievalService, address, { defaultTimeoutMs: 30_000 });
  try {
    // A service that exits (a bad index, a port taken) ends the wait at once, with its output.
    await Promise.race([
      waitForServing(address, 600_000),
      service.exited.then((exit) => {
        throw new Error(`the retrieval service exited (${exit.code ?? exit.signal}) before serving:\n${exit.stderr}${exit.stdout}`);
      }),
    ]);
    const startSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const info = await client.getIndexInfo({});
    if (Number(info.size) !== ITEMS) throw new Error(`the service serves ${info.size} items, expected ${ITEMS}`);

    const users = setup.dataset.users.ids;
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
    for (let n = 0; n < REQUESTS; n++) {
      let answer: retrieval.RetrieveResponse | undefined;
      const only = [
        { channel: 'two_tower', limit: K },
        { channel: 'popular', limit: 0 },
        { channel: 'item_to_item', limit: 0 },
      ];
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
      dim,
      requests: REQUESTS,
      synthetic_spread: SPREAD,
      // The bench builds with the default HNSW parameters.
      expansion_search: Number(EXPANSION_SEARCH ?? DEFAULT_HNSW_PARAMS.expansionSearch),
      p50_ms: round(p50),
      p99_ms: round(quantile(latency, 0.99)),
      two_tower_only_p50_ms: round(quantile(annOnly, 0.5)),
      'ann_recall@100': round(hits / (REQUESTS * K), 4),
      exact_p50_ms: round(exactP50),
      ratio_p50: round(exactP50 / p50, 2),
      channel_p50_ms: Object.fromEntries(Object.entries(channelMs).map(([channel, ms]) => [channel, round(quantile(ms, 0.5))])),
      failed_channel_reports: failedChannels,
      build_s: round(buildSeconds, 1),
      service_start_s: round(startSeconds, 1),
      service_rss_mib: rssMiB(service.child.pid!),
      trained_items: trained.ids.length,
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
    service.child.kill('SIGTERM');
    featureProcess.child.kill('SIGTERM');
    await Promise.all([service.exited, featureProcess.exited]);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
