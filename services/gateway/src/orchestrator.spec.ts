import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { common, gateway, preranking, ranking, reranking, retrieval } from '@recsys/contracts';
import { Writable } from 'node:stream';
import { createLogger, runWithRequestContext, ServiceMetrics } from '@recsys/service-kit';
import { AdaptiveCounts } from './adaptive-counts.js';
import { loadGatewayConfig } from './config.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { Orchestrator, type StageClients } from './orchestrator.js';
import { PopularFallback } from './popular-fallback.js';

const { Stage, DegradationCause } = common;
const logger = createLogger('test', 'silent');

const candidate = (itemId: string, score: number, stage = Stage.RETRIEVAL) =>
  create(common.CandidateSchema, { itemId, score, channels: ['two_tower'], stageScores: [{ stage, score }], category: 'cat-1' });

type Answer = Uint8Array | { code: number; details: string };

/**
 * Stage clients scripted per test (a test double of the four stages' wire, not of the gateway): each raw call
 * is recorded and answered with the bytes or the gRPC error the test gives. The real stages are exercised in
 * gateway-app.spec.ts and test/e2e.
 */
function scripted(answers: Partial<Record<'retrieve' | 'prerank' | 'rank' | 'rerank', (request: Uint8Array) => Answer>>) {
  const calls: Record<string, Uint8Array[]> = {};
  const client = (method: string) => ({
    raw: async (name: string, request: Uint8Array) => {
      expect(name).toBe(method);
      (calls[method] ??= []).push(request);
      const answer = answers[method as keyof typeof answers]?.(request) ?? { code: status.UNAVAILABLE, details: 'not scripted' };
      if (answer instanceof Uint8Array) return answer;
      throw Object.assign(new Error(answer.details), answer);
    },
    close: () => undefined,
  });
  const clients = {
    features: { getPopularItems: async () => ({ items: [] }), close: () => undefined },
    retrieval: client('retrieve'),
    preranking: client('prerank'),
    ranking: client('rank'),
    reranking: client('rerank'),
  } as unknown as StageClients;
  return { clients, calls };
}

function orchestrator(clients: StageClients, env: Record<string, string> = {}, log = logger, lagMs?: () => number) {
  // BREAKER_MIN_FAILING_MS=0: the scripted failures come within milliseconds of each other.
  const config = loadGatewayConfig({
    AUTH_DISABLED: 'true',
    BUDGET_DEFAULT_MS: '5000',
    BUDGET_MAX_MS: '5000',
    BREAKER_MIN_FAILING_MS: '0',
    ...env,
  });
  const metrics = new GatewayMetrics(new ServiceMetrics('gateway'));
  const popular = new PopularFallback(clients.features, { limit: 10, refreshMs: 60000, timeoutMs: 100 }, metrics, log);
  return new Orchestrator(clients, config, new AdaptiveCounts(config.adaptive), popular, metrics, log, undefined, lagMs);
}

const bytes = <D extends DescMessage>(schema: D, init: MessageInitShape<D>) => toBinary(schema, create(schema, init));
const caller = { requestId: 'r-1', keyName: 'anonymous' };
const retrieved = Array.from({ length: 400 }, (_, i) => candidate(`item-${i}`, Math.fround(1 - i / 1000)));

/** Each stage keeps the best of what it got, in order, adding its own score. */
function passThrough(kind: 'prerank' | 'rank' | 'rerank', stage: common.Stage) {
  return (request: Uint8Array) => {
    const decoded = fromBinary(preranking.PrerankRequestSchema, request);
    const kept = decoded.candidates.slice(0, decoded.limit || undefined).map((c) =>
      create(common.CandidateSchema, {
        itemId: c.itemId,
        score: c.score,
        channels: c.channels,
        category: c.category,
        stageScores: [...c.stageScores, create(common.StageScoreSchema, { stage, score: 0.5 })],
      }),
    );
    const schema = { prerank: preranking.PrerankResponseSchema, rank: ranking.RankResponseSchema, rerank: reranking.RerankResponseSchema }[
      kind
    ];
    return bytes(schema, { candidates: kept });
  };
}

describe('orchestrator: what each stage is asked and how answers and failures become the response', () => {
  it('asks for the adaptive counts, passes the embedding on, ranks into the re-ranking pool and answers k without context items', async () => {
    const { clients, calls } = scripted({
      retrieve: () => bytes(retrieval.RetrieveResponseSchema, { candidates: retrieved, userEmbedding: [0.5, 0.25], modelVersion: '3' }),
      prerank: passThrough('prerank', Stage.PRERANKING),
      rank: passThrough('rank', Stage.RANKING),
      rerank: passThrough('rerank', Stage.RERANKING),
    });
    const context = { recentItems: [{ itemId: 'item-1' }] };
    const answer = await orchestrator(clients).recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 10, context }), caller);

    const retrieve = fromBinary(retrieval.RetrieveRequestSchema, calls.retrieve![0]!);
    expect(retrieve.limit).toBe(1000);
    expect(retrieve.quotas.map((q) => [q.channel, q.limit])).toEqual([
      ['two_tower', 600],
      ['popular', 150],
      ['item_to_item', 250],
    ]);
    const prerank = fromBinary(preranking.PrerankRequestSchema, calls.prerank![0]!);
    expect(prerank).toMatchObject({ userId: 'u', limit: 300, userEmbedding: [0.5, 0.25], embeddingModelVersion: '3' });
    expect(prerank.candidates).toEqual(retrieved);
    expect(prerank.context?.recentItems.map((i) => i.itemId)).toEqual(['item-1']);
    const rank = fromBinary(ranking.RankRequestSchema, calls.rank![0]!);
    expect(rank.candidates).toHaveLength(300);
    expect(rank.limit).toBe(100); // max(10 x 5, 100)
    const rerank = fromBinary(reranking.RerankRequestSchema, calls.rerank![0]!);
    expect(rerank.candidates).toHaveLength(100);
    expect(rerank.limit).toBe(10);

    // item-1 is in the context: re-ranking kept it (this double does not drop it), the gateway does.
    expect(answer.items.map((i) => i.itemId)).toEqual(['item-0', ...Array.from({ length: 9 }, (_, i) => `item-${i + 2}`)].slice(0, 9));
    expect(answer.degradations).toEqual([]);
    expect(answer.timings.map((t) => [Stage[t.stage], t.candidatesIn, t.candidatesOut])).toEqual([
      ['RETRIEVAL', 0, 400],
      ['PRERANKING', 400, 300],
      ['RANKING', 300, 100],
      ['RERANKING', 100, 10],
    ]);
  });

  it('lists a failed retrieval channel (not a skipped one), and replaces a stage whose answer does not parse or that sheds load', async () => {
    const { clients } = scripted({
      retrieve: () =>
        bytes(retrieval.RetrieveResponseSchema, {
          candidates: retrieved.slice(0, 50),
          channels: [
            { channel: 'two_tower', returned: 0, error: 'skipped: unknown user (cold start)' },
            { channel: 'popular', returned: 0, error: 'timed out after 500 ms' },
            { channel: 'item_to_item', returned: 50 },
          ],
        }),
      prerank: () => new Uint8Array([0x0a, 0x05, 0x01]),
      rank: () => ({ code: status.RESOURCE_EXHAUSTED, details: 'queue full' }),
      rerank: passThrough('rerank', Stage.RERANKING),
    });
    const answer = await orchestrator(clients).recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 5 }), caller);
    expect(answer.degradations.map((d) => [Stage[d.stage], DegradationCause[d.cause], d.fallback])).toEqual([
      ['RETRIEVAL', 'DEADLINE_EXCEEDED', 'the other retrieval channels'],
      ['PRERANKING', 'ERROR', 'retrieval order'],
      ['RANKING', 'OVERLOADED', 'pre-ranking order'],
    ]);
    expect(answer.degradations[0]!.detail).toBe('retrieval channel popular: timed out after 500 ms');
    expect(answer.degradations[1]!.detail).toMatch(/^preranking: truncated/);
    expect(answer.items.map((i) => i.itemId)).toEqual(['item-0', 'item-1', 'item-2', 'item-3', 'item-4']);
  });

  it('stops calling a stage that keeps failing for a cool-down, answering with its fallback at once', async () => {
    const { clients, calls } = scripted({
      retrieve: () => bytes(retrieval.RetrieveResponseSchema, { candidates: retrieved.slice(0, 30) }),
      prerank: passThrough('prerank', Stage.PRERANKING),
      rank: () => ({ code: status.UNAVAILABLE, details: 'connect ECONNREFUSED' }),
      rerank: passThrough('rerank', Stage.RERANKING),
    });
    const gatewayOrchestrator = orchestrator(clients);
    const ask = () => gatewayOrchestrator.recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 5 }), caller);
    for (let i = 0; i < 5; i++) expect((await ask()).degradations[0]!.detail).toBe('ranking: connect ECONNREFUSED');
    const skipped = await ask();
    expect(calls.rank).toHaveLength(5);
    expect(skipped.degradations.map((d) => [Stage[d.stage], DegradationCause[d.cause], d.fallback])).toEqual([
      ['RANKING', 'UNAVAILABLE', 'pre-ranking order'],
    ]);
    expect(skipped.degradations[0]!.detail).toMatch(
      /^ranking: skipped: 5\+ failures in a row and no answer for 0\+ ms; tried again in \d+ ms$/,
    );
    expect(skipped.items).toHaveLength(5);
    expect(calls.rerank).toHaveLength(6); // the other stages are still called
  });

  it('counts the budget from when the transport received the request, less the event-loop lag, and keeps the lag back at the end: time spent before the orchestrator (the wait to be read, an admission queue) and the wait to write the answer are part of it', async () => {
    const { clients, calls } = scripted({
      retrieve: () => bytes(retrieval.RetrieveResponseSchema, { candidates: retrieved.slice(0, 30) }),
      prerank: passThrough('prerank', Stage.PRERANKING),
      rank: passThrough('rank', Stage.RANKING),
      rerank: passThrough('rerank', Stage.RERANKING),
    });
    const gatewayOrchestrator = orchestrator(clients);
    const ask = (receivedMs: number) =>
      runWithRequestContext({ requestId: 'r-1', deadlineMs: Infinity, receivedMs, method: 'test' }, () =>
        gatewayOrchestrator.recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 5 }), caller),
      );
    // Received just now: every stage is called.
    expect((await ask(Date.now())).degradations).toEqual([]);
    expect(calls.retrieve).toHaveLength(1);
    // Received a whole budget (5000 ms) ago: nothing is left for any stage, none is called.
    const late = await ask(Date.now() - 5000);
    expect(calls.retrieve).toHaveLength(1);
    expect(late.degradations.map((d) => [Stage[d.stage], DegradationCause[d.cause]])).toEqual([['RETRIEVAL', 'BUDGET_EXHAUSTED']]);
    expect(late.degradations[0]!.detail).toMatch(/^skipped: 0 ms of the budget left/);

    // Received just now by a process whose event loop lags a whole budget: the request waited that long before it was
    // read, so nothing is left either.
    let lag = 0;
    const lagging = orchestrator(clients, {}, logger, () => lag);
    const askLagging = () =>
      runWithRequestContext({ requestId: 'r-2', deadlineMs: Infinity, receivedMs: Date.now(), method: 'test' }, () =>
        lagging.recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 5 }), caller),
      );
    expect((await askLagging()).degradations).toEqual([]);
    expect(calls.retrieve).toHaveLength(2);
    lag = 5000;
    expect((await askLagging()).degradations.map((d) => DegradationCause[d.cause])).toEqual(['BUDGET_EXHAUSTED']);
    expect(calls.retrieve).toHaveLength(2);
    // Half a budget of lag: the request waited ~2.5 s to be read, and its answer will wait about as long to be
    // written, so the 5 s leave the stages nothing (counting the lag at the start alone would leave them 2.5 s).
    lag = 2500;
    expect((await askLagging()).degradations.map((d) => DegradationCause[d.cause])).toEqual(['BUDGET_EXHAUSTED']);
    expect(calls.retrieve).toHaveLength(2);
  });

  it('writes at most DEGRADED_LOG_LIMIT fallback lines per stage and cause in a window, then one line with the count left out', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
    const { clients } = scripted({
      retrieve: () => bytes(retrieval.RetrieveResponseSchema, { candidates: retrieved.slice(0, 30) }),
      prerank: passThrough('prerank', Stage.PRERANKING),
      rank: passThrough('rank', Stage.RANKING),
      rerank: () => ({ code: status.INTERNAL, details: 'rule failed' }),
    });
    // No breaker: every request calls re-ranking and is answered with the ranked order.
    const env = { DEGRADED_LOG_LIMIT: '3', DEGRADED_LOG_WINDOW_MS: '60000', BREAKER_FAILURES: '0' };
    const gatewayOrchestrator = orchestrator(clients, env, createLogger('gateway', 'info', sink));
    for (let i = 0; i < 20; i++) {
      const answer = await gatewayOrchestrator.recommend(create(gateway.RecommendRequestSchema, { userId: 'u', k: 5 }), caller);
      expect(answer.degradations).toHaveLength(1);
    }
    const fallbacks = () => lines.filter((l) => l.msg === 'answered with fallbacks');
    expect(fallbacks()).toHaveLength(3);
    expect(fallbacks()[0]).toMatchObject({ level: 'warn', requestId: 'r-1', degraded: ['RERANKING: error'] });
    gatewayOrchestrator.close();
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => typeof l.suppressed === 'number')).toEqual([
      expect.objectContaining({ level: 'warn', degraded: 'RERANKING: error', suppressed: 17, windowMs: 60000 }),
    ]);
  });
});
