// Re-ranking's per-call cost in process: RerankingService.rerank (the transport-free logic the gRPC handler calls) with
// the built-in default rules on a request as the gateway sends it (BENCH_CANDIDATES ranked candidates with the fields
// ranking writes, the user's history passed down so that no feature read is made, limit 20): CPU µs and bytes
// allocated per call (V8's sampling heap profiler, collected objects included). The baseline, measured in the same run
// on the same request: protobuf-es decoding the whole request and encoding a response of `limit` candidates, the
// generic path the byte path replaces (no rules run). Allocation is what fills the young generation, and what a
// request still holds at a scavenge is copied, then promoted; it sets how often re-ranking collects garbage.
// The last line is one JSON object.
import { Session } from 'node:inspector/promises';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { common, features, reranking } from '@recsys/contracts';
import { buildRules, defaultRules, RerankingService, RuleEngine, type FeatureSource } from '@recsys/reranking';
import { envNumber } from '../harness/script-env';
import { round } from './stats';

const CANDIDATES = envNumber('BENCH_CANDIDATES', 100, 'count');
const CALLS = envNumber('BENCH_CALLS', 20_000, 'count');
const ROUNDS = envNumber('BENCH_ROUNDS', 3, 'count');
/**
 * The share of candidates in one category (`cat-0`), the rest spread over 20: a ranked list one category dominates,
 * where the diversity rule has the most to move (default 0: all 20 alike).
 */
const TOP_CATEGORY_SHARE = envNumber('BENCH_TOP_CATEGORY_SHARE', 0, 'non-negative');
if (TOP_CATEGORY_SHARE > 1) throw new Error(`BENCH_TOP_CATEGORY_SHARE must be at most 1, got ${TOP_CATEGORY_SHARE}`);
const LIMIT = 20;
const HISTORY = 100;
const NOW = Date.UTC(2026, 11, 1, 12);
const DAY_MS = 86_400_000;

/** A RerankRequest as the gateway sends it: ranked candidates, the user's history passed down. */
function requestBytes(seed: number): Uint8Array {
  let state = seed >>> 0;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const candidates = Array.from({ length: CANDIDATES }, (_, i) => {
    const score = 1 - i / CANDIDATES + random() * 0.002;
    return create(common.CandidateSchema, {
      itemId: `item-${Math.floor(random() * 1_000_000)}`,
      score,
      channels: random() < 0.2 ? ['two_tower', 'item_to_item'] : ['two_tower'],
      stageScores: [
        { stage: common.Stage.RETRIEVAL, score: random() },
        { stage: common.Stage.PRERANKING, score: random() },
        { stage: common.Stage.RANKING, score },
      ],
      category: random() < TOP_CATEGORY_SHARE ? 'cat-0' : `cat-${Math.floor(random() * 20)}`,
      createdAtMs: BigInt(NOW - Math.floor(random() * 60) * DAY_MS),
    });
  });
  const history = Array.from({ length: HISTORY }, (_, i) => ({
    itemId: `item-${Math.floor(random() * 1_000_000)}`,
    timestampMs: BigInt(NOW - i * 60_000),
    eventType: common.EventType.VIEW,
  }));
  return toBinary(
    reranking.RerankRequestSchema,
    create(reranking.RerankRequestSchema, {
      userId: `user-${seed}`,
      context: { requestTimeMs: BigInt(NOW) },
      candidates,
      limit: LIMIT,
      userState: create(features.GetUserFeaturesResponseSchema, { found: true, user: { userId: `user-${seed}` }, history }),
      userHistoryLimit: HISTORY,
    }),
  );
}

/** Every read comes with the request; a read here would be a defect of the bench's request. */
const noReads: FeatureSource = {
  history: () => Promise.reject(new Error('the bench passes the user down; re-ranking read the history')),
  items: () => Promise.reject(new Error('the bench passes every field; re-ranking read items')),
};

interface Figures {
  cpuUs: number;
  allocatedKiB: number;
}

/** CPU µs and KiB allocated per call of `call` over CALLS calls (after a warm-up of the same length). */
async function measure(call: (i: number) => Promise<unknown> | unknown): Promise<Figures> {
  for (let i = 0; i < CALLS; i++) await call(i);
  const session = new Session();
  session.connect();
  let cpuUs = Infinity;
  let allocatedKiB = Infinity;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) await call(i);
      const used = process.cpuUsage(cpu);
      cpuUs = Math.min(cpuUs, (used.user + used.system) / CALLS);
    }
    await session.post('HeapProfiler.enable');
    // Sampled over fewer calls: the profile lists every sample, and its JSON must fit in one string.
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 2048,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const sampled = Math.min(CALLS, 2000);
    for (let i = 0; i < sampled; i++) await call(i);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    let bytes = 0;
    const walk = (node: { selfSize: number; children: (typeof node)[] }): void => {
      bytes += node.selfSize;
      node.children.forEach(walk);
    };
    walk(profile.head);
    allocatedKiB = bytes / sampled / 1024;
  } finally {
    session.disconnect();
  }
  return { cpuUs, allocatedKiB };
}

async function main(): Promise<void> {
  const requests = Array.from({ length: 64 }, (_, i) => requestBytes(i + 1));
  const service = new RerankingService(new RuleEngine(await buildRules(defaultRules()), noReads), {
    defaultLimit: LIMIT,
    maxLimit: 200,
    maxCandidates: 10_000,
    maxIdLength: 256,
  });
  const answer = await service.rerank(requests[0]!);
  const decoded = fromBinary(reranking.RerankResponseSchema, answer.bytes);
  if (decoded.candidates.length !== LIMIT) throw new Error(`re-ranking answered ${decoded.candidates.length} candidates, not ${LIMIT}`);
  const failed = decoded.rules.filter((rule) => rule.error !== '');
  if (failed.length > 0) throw new Error(`rules failed: ${failed.map((rule) => `${rule.rule}: ${rule.error}`).join('; ')}`);

  const rerank = await measure((i) => service.rerank(requests[i % requests.length]!));
  // The baseline: the generic decode of the request and encode of an answer of the same size, no rules.
  const baseline = await measure((i) => {
    const request = fromBinary(reranking.RerankRequestSchema, requests[i % requests.length]!);
    return toBinary(
      reranking.RerankResponseSchema,
      create(reranking.RerankResponseSchema, { candidates: request.candidates.slice(0, LIMIT) }),
    );
  });
  const result = {
    candidates: CANDIDATES,
    top_category_share: TOP_CATEGORY_SHARE,
    limit: LIMIT,
    calls: CALLS,
    rerank_cpu_us: round(rerank.cpuUs, 1),
    rerank_allocated_kib: round(rerank.allocatedKiB, 1),
    baseline_decode_encode_cpu_us: round(baseline.cpuUs, 1),
    baseline_decode_encode_allocated_kib: round(baseline.allocatedKiB, 1),
    cpu_ratio: round(rerank.cpuUs / baseline.cpuUs, 3),
    allocated_ratio: round(rerank.allocatedKiB / baseline.allocatedKiB, 3),
    node_version: process.version,
  };
  console.log(
    `re-ranking, ${CANDIDATES} candidates → ${LIMIT}, default rules: ${result.rerank_cpu_us} µs CPU and ${result.rerank_allocated_kib} KiB allocated per call`,
  );
  console.log(
    `baseline (protobuf-es decode + encode): ${result.baseline_decode_encode_cpu_us} µs, ${result.baseline_decode_encode_allocated_kib} KiB`,
  );
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
