// Item-to-item seeds in an embedded HNSW index of BENCH_ITEMS synthetic item vectors, asked by id (`similar`) of a
// store with its neighbour cache (the library's DEFAULT_NEIGHBOUR_CACHE_ITEMS, or BENCH_CACHE_ITEMS) and of the same
// index opened with the cache off (every seed searched: the baseline), on the same requests in one run, one after the
// other per request. A request is the retrieval service's: a random user of the synthetic data (BENCH_USERS users,
// BENCH_INTERACTIONS each), the newest item of its history as the seed (so seeds are as popular as the items users
// interact with), its history (up to 50 items) and the seed excluded, BENCH_QUOTA results. The cache starts empty:
// the figures include its warming. Both answers of every request are compared. Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSynthetic } from '@recsys/data';
import { buildHnswIndex, clusteredUnitVectors, DEFAULT_NEIGHBOUR_CACHE_ITEMS, openHnswIndex, type Neighbour } from '@recsys/vector-index';
import { envNumber } from '../harness/script-env';
import { round } from './stats';

const ITEMS = envNumber('BENCH_ITEMS', 200_000);
const USERS = envNumber('BENCH_USERS', 50_000);
const INTERACTIONS = envNumber('BENCH_INTERACTIONS', 20);
const REQUESTS = envNumber('BENCH_REQUESTS', 20_000);
const QUOTA = envNumber('BENCH_QUOTA', 100);
const CACHE_ITEMS = envNumber('BENCH_CACHE_ITEMS', DEFAULT_NEIGHBOUR_CACHE_ITEMS, 'whole');
/** The retrieval service's HISTORY_LENGTH default: the seen items a request excludes. */
const HISTORY = 50;
const DIM = 32;

/** Each user's items, newest first, each once. */
function histories(): string[][] {
  const data = generateSynthetic({ users: USERS, items: ITEMS, interactionsPerUser: INTERACTIONS, seed: 7 });
  const { interactions, items } = data;
  const rows: number[][] = Array.from({ length: USERS }, () => []);
  for (let r = 0; r < interactions.length; r++) rows[interactions.user[r]!]!.push(r);
  return rows.map((own) => [
    ...new Set(own.sort((a, b) => interactions.timestamp[b]! - interactions.timestamp[a]!).map((r) => items.ids[interactions.item[r]!]!)),
  ]);
}

function sameIds(a: readonly Neighbour[], b: readonly Neighbour[]): boolean {
  return a.length === b.length && a.every((n, k) => n.id === b[k]!.id);
}

async function main(): Promise<void> {
  const started = performance.now();
  const users = histories().filter((h) => h.length > 0);
  const ids = Array.from({ length: ITEMS }, (_, k) => `item-${k}`);
  const vectors = clusteredUnitVectors({ count: ITEMS, dim: DIM, clusters: 256, spread: 0.4, seed: 3 });
  const root = mkdtempSync(join(tmpdir(), 'bench-item-to-item-'));
  try {
    const dir = join(root, '1');
    await buildHnswIndex({ ids, vectors, dim: DIM, metric: 'ip', version: '1', modelVersion: 'bench' }, dir, { threads: 2 });
    console.log(`${ITEMS} items, ${users.length} users with a history: index built in ${round((performance.now() - started) / 1000, 1)} s`);
    const cached = await openHnswIndex(dir, { neighbourCacheItems: CACHE_ITEMS });
    const plain = await openHnswIndex(dir, { neighbourCacheItems: 0 });

    let random = 12345;
    const next = () => (random = (Math.imul(random, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let plainNs = 0n;
    let cachedNs = 0n;
    let hitNs = 0n;
    let missNs = 0n;
    let identical = 0;
    let overlap = 0;
    for (let q = 0; q < REQUESTS; q++) {
      const history = users[Math.floor(next() * users.length)]!.slice(0, HISTORY);
      const options = { excludeIds: new Set(history) };
      // Alternating which goes first, so neither always finds the other's reads in the CPU caches.
      const runPlain = () => {
        const t = process.hrtime.bigint();
        const got = plain.similarNow(history[0]!, QUOTA, options);
        plainNs += process.hrtime.bigint() - t;
        return got;
      };
      const runCached = () => {
        const hits = cached.neighbourCacheStats().hits;
        const t = process.hrtime.bigint();
        const got = cached.similarNow(history[0]!, QUOTA, options);
        const ns = process.hrtime.bigint() - t;
        cachedNs += ns;
        if (cached.neighbourCacheStats().hits > hits) hitNs += ns;
        else missNs += ns;
        return got;
      };
      let a: Neighbour[];
      let b: Neighbour[];
      if (q % 2 === 0) {
        a = runPlain();
        b = runCached();
      } else {
        b = runCached();
        a = runPlain();
      }
      if (sameIds(a, b)) identical++;
      const want = new Set(a.map((n) => n.id));
      overlap += a.length === 0 ? 1 : b.filter((n) => want.has(n.id)).length / a.length;
    }
    const stats = cached.neighbourCacheStats();
    const plainUs = Number(plainNs) / 1e3 / REQUESTS;
    const cachedUs = Number(cachedNs) / 1e3 / REQUESTS;
    const hitRatio = stats.hits / (stats.hits + stats.misses);
    const hitUs = Number(hitNs) / 1e3 / Math.max(1, stats.hits);
    const missUs = Number(missNs) / 1e3 / Math.max(1, REQUESTS - stats.hits);
    console.log(
      `${REQUESTS} seeds, ${QUOTA} neighbours each: searched ${round(plainUs, 1)} us, with the cache of ${CACHE_ITEMS} ${round(cachedUs, 1)} us ` +
        `(${round(plainUs / cachedUs, 2)}x), ${round(100 * hitRatio, 1)}% from the cache (${round(hitUs, 1)} us; a miss ${round(missUs, 1)} us); the same answer in ${round((100 * identical) / REQUESTS, 2)}% ` +
        `of requests, ${round(100 * (overlap / REQUESTS), 3)}% of the results shared`,
    );
    await Promise.all([cached.close(), plain.close()]);
    console.log(
      JSON.stringify({
        items: ITEMS,
        users: USERS,
        requests: REQUESTS,
        quota: QUOTA,
        cache_items: CACHE_ITEMS,
        searched_us_per_seed: round(plainUs, 2),
        cached_us_per_seed: round(cachedUs, 2),
        speedup: round(plainUs / cachedUs, 3),
        hit_ratio: round(hitRatio, 4),
        cache_hit_us: round(hitUs, 2),
        cache_miss_us: round(missUs, 2),
        identical_share: round(identical / REQUESTS, 4),
        result_overlap: round(overlap / REQUESTS, 5),
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
