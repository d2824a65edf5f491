import { create, toBinary } from '@bufbuild/protobuf';
import { common, preranking, ranking } from '@recsys/contracts';
import { bestFirst, encodeScoredCandidates } from './scored-candidates-wire.js';

describe('encodeScoredCandidates', () => {
  it('writes the bytes protobuf-es writes for the same answer', () => {
    const candidates = [
      create(common.CandidateSchema, { itemId: 'item-1', score: 0.5, channels: ['two_tower', 'popular'], category: 'books' }),
      create(common.CandidateSchema, {
        itemId: 'élément-ü',
        channels: ['', 'item_to_item'],
        stageScores: [
          { stage: common.Stage.RETRIEVAL, score: 0.25 },
          { stage: common.Stage.PRERANKING, score: 0 },
          { stage: common.Stage.UNSPECIFIED, score: -1.5 },
        ],
        category: 'ラベル',
      }),
      create(common.CandidateSchema, { itemId: 'x'.repeat(200), stageScores: [{ stage: -3 as common.Stage, score: 1 }] }),
      create(common.CandidateSchema, { itemId: 'last' }),
    ];
    const scores = new Float32Array([0.1, 0.9, 0, 0.30000001192092896]);
    const order = [1, 3, 0, 2];
    for (const count of [4, 2, 0]) {
      const encoded = encodeScoredCandidates(
        ranking.RankResponseSchema,
        common.Stage.RANKING,
        candidates,
        scores,
        order,
        count,
        count === 0 ? '' : '12',
        ['gone', 'ünknown'],
      );
      const expected = create(ranking.RankResponseSchema, {
        candidates: order.slice(0, count).map((k) => {
          const { itemId, channels, category, stageScores } = candidates[k]!;
          const appended = [
            ...stageScores.map(({ stage, score }) => ({ stage, score })),
            { stage: common.Stage.RANKING, score: scores[k]! },
          ];
          return { itemId, channels, category, score: scores[k]!, stageScores: appended };
        }),
        modelVersion: count === 0 ? '' : '12',
        missingItemIds: ['gone', 'ünknown'],
      });
      expect(Buffer.from(encoded.bytes).toString('hex')).toBe(Buffer.from(toBinary(ranking.RankResponseSchema, expected)).toString('hex'));
      expect(encoded.decode()).toEqual(expected);
    }
  });

  it('adds each candidate’s creation time as read, keeping one the candidate already carries, as protobuf-es writes it', () => {
    const candidates = [
      create(common.CandidateSchema, { itemId: 'a', category: 'c' }),
      create(common.CandidateSchema, { itemId: 'b', createdAtMs: 1_600_000_000_000n }),
      create(common.CandidateSchema, { itemId: 'c' }),
    ];
    const scores = new Float32Array([0.5, 0.25, 0.125]);
    const read = [1_700_000_000_123, 1_800_000_000_000, 0];
    const encoded = encodeScoredCandidates(
      ranking.RankResponseSchema,
      common.Stage.RANKING,
      candidates,
      scores,
      [0, 1, 2],
      3,
      '7',
      [],
      read,
    );
    const expected = create(ranking.RankResponseSchema, {
      candidates: candidates.map((c, k) => ({
        itemId: c.itemId,
        category: c.category,
        score: scores[k]!,
        stageScores: [{ stage: common.Stage.RANKING, score: scores[k]! }],
        createdAtMs: [1_700_000_000_123n, 1_600_000_000_000n, 0n][k]!,
      })),
      modelVersion: '7',
    });
    expect(Buffer.from(encoded.bytes).toString('hex')).toBe(Buffer.from(toBinary(ranking.RankResponseSchema, expected)).toString('hex'));
  });

  it('writes a pre-ranking answer with the pre-ranking stage, and refuses missing ids it has no field for', () => {
    const candidates = [
      create(common.CandidateSchema, { itemId: 'a', channels: ['popular'], stageScores: [{ stage: common.Stage.RETRIEVAL, score: 1 }] }),
      create(common.CandidateSchema, { itemId: 'b', category: 'toys' }),
    ];
    const scores = new Float32Array([0.25, 0.75]);
    const encoded = encodeScoredCandidates(preranking.PrerankResponseSchema, common.Stage.PRERANKING, candidates, scores, [1, 0], 2, '3');
    const expected = create(preranking.PrerankResponseSchema, {
      candidates: [
        { itemId: 'b', score: 0.75, category: 'toys', stageScores: [{ stage: common.Stage.PRERANKING, score: 0.75 }] },
        {
          itemId: 'a',
          score: 0.25,
          channels: ['popular'],
          stageScores: [
            { stage: common.Stage.RETRIEVAL, score: 1 },
            { stage: common.Stage.PRERANKING, score: 0.25 },
          ],
        },
      ],
      modelVersion: '3',
    });
    expect(Buffer.from(encoded.bytes).toString('hex')).toBe(
      Buffer.from(toBinary(preranking.PrerankResponseSchema, expected)).toString('hex'),
    );
    expect(() =>
      encodeScoredCandidates(preranking.PrerankResponseSchema, common.Stage.PRERANKING, candidates, scores, [0], 1, '3', ['x']),
    ).toThrow('recsys.preranking.v1.PrerankResponse has no missing_item_ids');
  });
});

describe('bestFirst', () => {
  it('orders by descending score, ties in the given order', () => {
    expect(Array.from(bestFirst(new Float32Array([0.5, 0.9, 0.5, 0.1, 0.9, 0])))).toEqual([1, 4, 0, 2, 3, 5]);
  });
});
