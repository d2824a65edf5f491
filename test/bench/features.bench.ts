// 1,000-item batch feature read: through the feature service's gRPC API (a separate process on a real
// Redis) against the same MGET straight through ioredis, in one run. Last line: one JSON object.
import { fromBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { Redis } from 'ioredis';
import { builtEntry, RedisServer, startNode } from '@recsys/testing';
import { quantile, round, rssMiB, timeMs } from './stats';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 20000);
const BATCH = 1000;
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 400);
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

async function main(): Promise<void> {
  const redis = await RedisServer.start();
  const port = await freePort();
  const service = startNode(builtEntry('services/features/dist/main.js'), {
    GRPC_PORT: String(port),
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
  });
  const address = `127.0.0.1:${port}`;
  const client = createServiceClient(features.FeatureService, address, { defaultTimeoutMs: 30000 });
  const raw = new Redis(redis.url);
  try {
    await waitForServing(address, 20000);
    for (let start = 0; start < ITEMS; start += BATCH) {
      await client.upsertItems({ items: Array.from({ length: Math.min(BATCH, ITEMS - start) }, (_, k) => item(start + k)) });
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
    const sides: [(ids: string[]) => Promise<void>, number[]][] = [
      [readGrpc, grpc],
      [readRedis, direct],
      [readRedisDecoded, decoded],
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
    };
    console.log(
      `gRPC ${result.grpc_p50_ms} ms p50 / ${result.grpc_p99_ms} ms p99; ioredis MGET ${result.redis_p50_ms} / ${result.redis_p99_ms} ms`,
    );
    console.log(JSON.stringify(result));
  } finally {
    client.close();
    raw.disconnect();
    service.child.kill('SIGTERM');
    await service.exited;
    await redis.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
