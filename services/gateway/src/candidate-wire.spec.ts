import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { common, features, preranking, ranking, reranking, retrieval } from '@recsys/contracts';
import { CandidateList, decodeRules, encodeContext, readStageAnswer, withPassedUser, writeStageRequest } from './candidate-wire.js';

const { Stage, EventType } = common;

/** Candidates as stages write them, with the awkward cases: non-ASCII ids, zero scores, no category, several stage scores. */
function candidates(n: number, seed = 1): common.Candidate[] {
  return Array.from({ length: n }, (_, i) =>
    create(common.CandidateSchema, {
      itemId: i % 17 === 3 ? `ítem-ß-${seed}-${i}` : `item-${seed}-${i}`,
      score: i % 11 === 0 ? 0 : Math.fround(((seed * 7919 + i * 104729) % 1000) / 997 - 0.3),
      channels: i % 3 === 0 ? ['two_tower', 'item_to_item'] : ['popular'],
      stageScores: [{ stage: Stage.RETRIEVAL, score: 0.25 * i }, ...(i % 2 ? [{ stage: Stage.PRERANKING, score: -1.5 }] : [])],
      category: i % 5 === 0 ? '' : `cat-${i % 4}`,
    }),
  );
}

const context = create(common.UserContextSchema, {
  recentItems: [
    { itemId: 'item-9', timestampMs: 1_700_000_000_123n, dwellSeconds: 12.5, eventType: EventType.VIEW },
    { itemId: 'ünïcode', eventType: EventType.PURCHASE },
  ],
  attributes: { device: 'ios', locale: 'de-DE' },
  requestTimeMs: 1_700_000_000_999n,
});

describe('candidate wire: what the gateway reads and writes equals protobuf-es', () => {
  it('reads a RetrieveResponse: candidates (ids and bytes), user embedding, model version; other fields skipped', () => {
    const list = candidates(300);
    const message = create(retrieval.RetrieveResponseSchema, {
      candidates: list,
      channels: [{ channel: 'two_tower', returned: 3, durationMs: 1.25, error: '' }],
      indexVersion: '7',
      coldStart: true,
      userEmbedding: [0.5, -0.25, 1e-7, 3.5],
      modelVersion: '12',
    });
    const answer = readStageAnswer(toBinary(retrieval.RetrieveResponseSchema, message), 'retrieve');
    expect(answer.candidates.ids).toEqual(list.map((c) => c.itemId));
    expect(answer.candidates.decodeAll()).toEqual(list);
    expect(answer.userEmbedding).toEqual([0.5, -0.25, Math.fround(1e-7), 3.5]);
    expect(answer.modelVersion).toBe('12');
  });

  it('reads rule reports of a RerankResponse only when asked', () => {
    const rules = [
      create(common.RuleReportSchema, { rule: 'drop_seen', removedItemIds: ['a', 'b'], detail: 'x', durationMs: 0.5 }),
      create(common.RuleReportSchema, { rule: 'shuffle', error: 'skipped' }),
    ];
    const bytes = toBinary(reranking.RerankResponseSchema, create(reranking.RerankResponseSchema, { candidates: candidates(5), rules }));
    const answer = readStageAnswer(bytes, 'rerank');
    expect(answer.candidates.length).toBe(5);
    expect(decodeRules(answer.rules)).toEqual(rules);
  });

  it('writes Prerank, Rank and Rerank requests that decode to what protobuf-es would build', () => {
    const list = candidates(120, 3);
    const passed = readStageAnswer(toBinary(ranking.RankResponseSchema, create(ranking.RankResponseSchema, { candidates: list })), 'rank');
    const embedding = [0.125, -2, 0.333];
    const prerank = writeStageRequest({
      userId: 'user-ü',
      context: encodeContext(context),
      candidates: passed.candidates,
      limit: 60,
      userEmbedding: embedding,
      embeddingModelVersion: '4',
    });
    expect(fromBinary(preranking.PrerankRequestSchema, prerank)).toEqual(
      create(preranking.PrerankRequestSchema, {
        userId: 'user-ü',
        context,
        candidates: list,
        limit: 60,
        userEmbedding: embedding.map(Math.fround),
        embeddingModelVersion: '4',
      }),
    );
    const rank = writeStageRequest({ userId: 'u', context: undefined, candidates: passed.candidates.slice(10), limit: 0 });
    expect(fromBinary(ranking.RankRequestSchema, rank)).toEqual(
      create(ranking.RankRequestSchema, { userId: 'u', candidates: list.slice(0, 10) }),
    );
    const rerank = writeStageRequest({ userId: 'u', context: encodeContext(context), candidates: CandidateList.of(list), limit: 20 });
    expect(fromBinary(reranking.RerankRequestSchema, rerank)).toEqual(
      create(reranking.RerankRequestSchema, { userId: 'u', context, candidates: list, limit: 20 }),
    );
  });

  it('passes the user read once to every stage: the feature answer’s bytes spliced in, decoding as protobuf-es builds it', () => {
    const state = create(features.GetUserFeaturesResponseSchema, {
      found: true,
      user: { userId: 'user-ü', features: { values: { age: { kind: { case: 'numeric', value: 41 } } } } },
      history: [
        { itemId: 'h1', timestampMs: 1_700_000_000_000n, dwellSeconds: 12.5, eventType: common.EventType.VIEW },
        { itemId: 'h2', eventType: common.EventType.PURCHASE },
      ],
    });
    const user = { state: toBinary(features.GetUserFeaturesResponseSchema, state), historyLimit: 100 };
    const list = candidates(5, 1);
    for (const [schema, body] of [
      [
        preranking.PrerankRequestSchema,
        writeStageRequest({ userId: 'user-ü', user, context: undefined, candidates: CandidateList.of(list), limit: 3 }),
      ],
      [
        ranking.RankRequestSchema,
        writeStageRequest({ userId: 'user-ü', user, context: undefined, candidates: CandidateList.of(list), limit: 3 }),
      ],
      [
        reranking.RerankRequestSchema,
        writeStageRequest({ userId: 'user-ü', user, context: undefined, candidates: CandidateList.of(list), limit: 3 }),
      ],
    ] as const) {
      const decoded = fromBinary(schema, body);
      expect(decoded.userState).toEqual(state);
      expect(decoded.userHistoryLimit).toBe(100);
      expect(decoded.candidates).toEqual(list);
    }
    const retrieve = create(retrieval.RetrieveRequestSchema, { userId: 'user-ü', limit: 500, context });
    const spliced = withPassedUser(toBinary(retrieval.RetrieveRequestSchema, retrieve), user);
    expect(fromBinary(retrieval.RetrieveRequestSchema, spliced)).toEqual({ ...retrieve, userState: state, userHistoryLimit: 100 });
    // Without a user read (off, or failed) the requests are as before: the stages read the user themselves.
    const plain = toBinary(retrieval.RetrieveRequestSchema, retrieve);
    expect(withPassedUser(plain, undefined)).toBe(plain);
  });

  it("copies an answer's candidates lying back to back in one go, to the same bytes as one by one", () => {
    // Long candidates too (a two-byte length), as an answer holds them, then cut, picked and copied apart.
    const list = candidates(300, 4).map((c, i) => (i % 50 === 7 ? { ...c, category: 'x'.repeat(200) } : c));
    const answer = readStageAnswer(
      toBinary(retrieval.RetrieveResponseSchema, create(retrieval.RetrieveResponseSchema, { candidates: list, indexVersion: 'v1' })),
      'retrieve',
    ).candidates;
    const write = (candidates: CandidateList) =>
      Buffer.from(writeStageRequest({ userId: 'u', context: encodeContext(context), candidates, limit: 7 })).toString('hex');
    for (const [from, to] of [
      [0, 300],
      [0, 200],
      [0, 1],
      [8, 9],
      [150, 300],
    ] as const) {
      const positions = Array.from({ length: to - from }, (_, k) => from + k);
      const cut = from === 0 ? answer.slice(to) : answer.pick(positions);
      // The same candidates each in a buffer of its own (no headers between them: copied one by one).
      const apart = CandidateList.fromSpans(positions.map((k) => answer.span(k)));
      expect(write(cut)).toBe(write(apart));
      expect(fromBinary(ranking.RankRequestSchema, Buffer.from(write(cut), 'hex')).candidates).toEqual(list.slice(from, to));
    }
    // Out of order: not back to back, copied one by one.
    const shuffled = answer.pick([5, 3, 4, 250, 0]);
    expect(fromBinary(ranking.RankRequestSchema, Buffer.from(write(shuffled), 'hex')).candidates).toEqual(
      [5, 3, 4, 250, 0].map((k) => list[k]),
    );
    expect(write(CandidateList.empty)).toBe(write(CandidateList.fromSpans([])));
  });

  it('grows its buffer for large requests and refuses truncated answers', () => {
    const list = candidates(5000, 9);
    const bytes = writeStageRequest({ userId: 'u', context: undefined, candidates: CandidateList.of(list), limit: 1 });
    expect(fromBinary(ranking.RankRequestSchema, bytes).candidates).toEqual(list);
    const answer = toBinary(ranking.RankResponseSchema, create(ranking.RankResponseSchema, { candidates: list.slice(0, 3) }));
    expect(() => readStageAnswer(answer.subarray(0, answer.length - 3), 'rank')).toThrow(RangeError);
  });
});
