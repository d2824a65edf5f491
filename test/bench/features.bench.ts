// 1,000-item batch feature read: through the feature service's gRPC API (a separate process on a real
// Redis) against the same MGET straight through ioredis, in one run; then the same reads on a 3-master
// Redis Cluster (a second service process with REDIS_CLUSTER_NODES, and the store's per-node read in
// this process beside the same read on the one Redis). Last line: one JSON object.
import { fromBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { Redis } from 'ioredis';
import { parseClusterNodes, RedisFeatureStore, type RedisFeatureStoreOptions } from '@recsys/features';
import { builtEntry, RedisCluster, RedisServer, startNode } from '@recsys/testing';
import { quantile, round, rssMiB, timeMs } from './stats';
import { envNumber } from '../harness/script-env';

const ITEMS = envNumber('BENCH_ITEMS', 20000);
const BATCH = 1000;
const ITERATIONS = envNumber('BENCH_ITERATIONS', 400);
const WARMUP = 50;

/** A catalogue item with a realistic mix of features (about 300 bytes encoded). */
function item(n: number) {
  const cat = (value: string) => ({ kind: { case: 'categorical' as const, value } });
  const num = (value: number) => ({ kind: { case: 'numeric' as const, value } });
  return {
    itemId: `item-${n}`,
    category: `cat-${n % 40}`,
    createdAtMs: BigInt(1_700_000_000_000 + n * 1000),
    features: {
      values: {
        brand: cat(`brand-${n % 500}`),
        price: num((n % 1000) / 10),
        rating: num((n % 50) / 10),
        language: cat(n % 3 ? 'en' : 'fr'),
        tags: { kind: { case: 'multi' as const, value: { values: [`t${n % 7}`, `t${n % 11}`, `t${n % 13}`] } } },
        embedding: { kind: { case: 'vector' as const, value: { values: Array.from({ length: 16 }, (_, k) => Math.sin(n + k)) } } },
      },
    },
  };
}

const storeOptions: RedisFeatureStoreOptions = {
  historyCap: 200,
  popularityHalfLifeMs: 86_400_000,
  dedupTtlMs: 3_600_000,
  eventWeights: {},
  historyEventTypes: new Set(),
  eventLogRetentionMs: 3_600_000,
  attributionWindowMs: 3_600_000,
};

async function main(): Promise<void> {
  const [redis, cluster] = await Promise.all([RedisServer.start(), RedisCluster.start(3)]);
  const [port, clusterPort] = [await freePort(), await freePort()];
  const entry = builtEntry('services/features/dist/main.js');
  const service = startNode(entry, { GRPC_PORT: String(port), REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
  const clusterService = startNode(entry, { GRPC_PORT: String(clusterPort), REDIS_CLUSTER_NODES: cluster.seeds, LOG_LEVEL: 'warn' });
  const address = `127.0.0.1:${port}`;
  const clusterAddress = `127.0.0.1:${clusterPort}`;
  const client = createServiceClient(features.FeatureService, address, { defaultTimeoutMs: 30000 });
  const clusterClient = createServiceClient(features.FeatureService, clusterAddress, { defaultTimeoutMs: 30000 });
  const raw = new Redis(redis.url);
  const store = await RedisFeatureStore.connect(redis.url, storeOptions);
  const clusterStore = await RedisFeatureStore.connectCluster(parseClusterNodes(cluster.seeds), storeOptions);
  try {
    await Promise.all([waitForServing(address, 20000), waitForServing(clusterAddress, 20000)]);
    for (let start = 0; start < ITEMS; start += BATCH) {
      const items = Array.from({ length: Math.min(BATCH, ITEMS - start) }, (_, k) => item(start + k));
      await client.upsertItems({ items });
      await clusterClient.upsertItems({ items });
    }
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const batch = () => Array.from({ length: BATCH }, () => `item-${Math.floor(random() * ITEMS)}`);

    const grpc: number[] = [];
    const direct: number[] = [];
    const decoded: number[] = [];
    const readGrpc = async (ids: string[]) => {
      const response = await client.batchGetItemFeatures({ itemIds: ids });
      if (response.missingIds.length > 0) throw new Error(`missing ${response.missingIds.length} items`);
    };
    const readRedis = async (ids: string[]) => {
      const values = await raw.mgetBuffer(ids.map((id) => `i:${id}`));
      if (values.some((v) => v === null)) throw new Error('missing keys in Redis');
    };
    const readRedisDecoded = async (ids: string[]) => {
      const values = await raw.mgetBuffer(ids.map((id) => `i:${id}`));
      for (const v of values) fromBinary(features.ItemSchema, v!);
    };
    const clusterGrpc: number[] = [];
    const storeOne: number[] = [];
    const storeCluster: number[] = [];
    const readClusterGrpc = async (ids: string[]) => {
      const response = await clusterClient.batchGetItemFeatures({ itemIds: ids });
      if (response.missingIds.length > 0) throw new Error(`missing ${response.missingIds.length} items on the cluster`);
    };
    const readStore = (target: RedisFeatureStore) => async (ids: string[]) => {
      const values = await target.getEncodedItems(ids);
      if (values.some((v) => v === undefined)) throw new Error(`missing items in ${target.address}`);
    };
    const sides: [(ids: string[]) => Promise<void>, number[]][] = [
      [readGrpc, grpc],
      [readRedis, direct],
      [readRedisDecoded, decoded],
      [readClusterGrpc, clusterGrpc],
      [readStore(store), storeOne],
      [readStore(clusterStore), storeCluster],
    ];
    // Blocks of each side in turn, the order rotating per round, so neither side inherits the
    // other's garbage or a colder cache more often; every block starts after a GC when exposed.
    const rounds = 5;
    const perBlock = Math.ceil(ITERATIONS / rounds);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < sides.length; k++) {
        const [read, samples] = sides[(round + k) % sides.length]!;
        (globalThis as { gc?: () => void }).gc?.();
        for (let i = 0; i < WARMUP / rounds + perBlock; i++) {
          const ids = batch();
          const ms = await timeMs(() => read(ids));
          if (i >= WARMUP / rounds) samples.push(ms);
        }
      }
    }
    const result = {
      items: ITEMS,
      batch: BATCH,
      iterations: ITERATIONS,
      grpc_p50_ms: round(quantile(grpc, 0.5)),
      grpc_p99_ms: round(quantile(grpc, 0.99)),
      redis_p50_ms: round(quantile(direct, 0.5)),
      redis_p99_ms: round(quantile(direct, 0.99)),
      redis_decode_p50_ms: round(quantile(decoded, 0.5)),
      grpc_items_per_s: Math.round((BATCH * 1000) / quantile(grpc, 0.5)),
      service_rss_mib: rssMiB(service.child.pid!),
      ratio_p50: round(quantile(grpc, 0.5) / quantile(direct, 0.5), 2),
      cluster_masters: 3,
      cluster_grpc_p50_ms: round(quantile(clusterGrpc, 0.5)),
      cluster_grpc_p99_ms: round(quantile(clusterGrpc, 0.99)),
      store_p50_ms: round(quantile(storeOne, 0.5)),
      cluster_store_p50_ms: round(quantile(storeCluster, 0.5)),
      cluster_store_p99_ms: round(quantile(storeCluster, 0.99)),
      cluster_service_rss_mib: rssMiB(clusterService.child.pid!),
      cluster_ratio_p50: round(quantile(clusterGrpc, 0.5) / quantile(grpc, 0.5), 2),
    };
    console.log(
      `gRPC ${result.grpc_p50_ms} ms p50 / ${result.grpc_p99_ms} ms p99; ioredis MGET ${result.redis_p50_ms} / ${result.redis_p99_ms} ms`,
    );
    console.log(
      `Redis Cluster (3 masters): gRPC ${result.cluster_grpc_p50_ms} ms p50 / ${result.cluster_grpc_p99_ms} ms p99; ` +
        `store read ${result.cluster_store_p50_ms} ms p50 (one Redis: ${result.store_p50_ms} ms)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    client.close();
    clusterClient.close();
    raw.disconnect();
    await Promise.all([store.close(), clusterStore.close()]);
    service.child.kill('SIGTERM');
    clusterService.child.kill('SIGTERM');
    await Promise.all([service.exited, clusterService.exited]);
    await Promise.all([redis.destroy(), cluster.destroy()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
