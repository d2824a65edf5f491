import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { common, preranking, ranking } from '@recsys/contracts';
import { CandidateList, readCandidateRequest } from './candidate-wire.js';
import type { EncodedMessage } from './encoded-message.js';
import { bestFirst, encodeNewCandidates, encodeScoredCandidates as encodeFromList } from './scored-candidates-wire.js';
import { retrieval } from '@recsys/contracts';

/** The candidates as a stage receives them: the bytes protobuf-es writes for each. */
const encodeScoredCandidates = <S extends Parameters<typeof encodeFromList>[0]>(
  schema: S,
  stage: common.Stage,
  candidates: readonly common.Candidate[],
  ...rest: Parameters<typeof encodeFromList> extends [unknown, unknown, unknown, ...infer R] ? R : never
) => encodeFromList(schema, stage, CandidateList.of(candidates), ...rest);

/** A message's canonical bytes (protobuf-es decode, then encode): equal for two encodings of the same message. */
const canonical = (schema: DescMessage, bytes: Uint8Array) => Buffer.from(toBinary(schema, fromBinary(schema, bytes))).toString('hex');
const hex = (schema: DescMessage, encoded: EncodedMessage | Uint8Array) =>
  canonical(schema, encoded instanceof Uint8Array ? encoded : encoded.bytes);

describe('encodeScoredCandidates', () => {
  it('writes an answer that decodes to what protobuf-es builds for it', () => {
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
      expect(hex(ranking.RankResponseSchema, encoded)).toBe(
        hex(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, expected)),
      );
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
    expect(hex(ranking.RankResponseSchema, encoded)).toBe(hex(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, expected)));
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
    expect(hex(preranking.PrerankResponseSchema, encoded)).toBe(
      hex(preranking.PrerankResponseSchema, toBinary(preranking.PrerankResponseSchema, expected)),
    );
    expect(() =>
      encodeScoredCandidates(preranking.PrerankResponseSchema, common.Stage.PRERANKING, candidates, scores, [0], 1, '3', ['x']),
    ).toThrow('recsys.preranking.v1.PrerankResponse has no missing_item_ids');
  });
});

describe('encodeScoredCandidates against protobuf-es on random candidates', () => {
  /** A random generator of its own seed. */
  const rng = (seed: number) => () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const unknownField = (random: () => number) =>
    // Field 99 (varint) or 100 (bytes): fields this build does not know, which must travel on untouched.
    random() < 0.5 ? new Uint8Array([0x98, 0x06, Math.floor(random() * 127)]) : new Uint8Array([0xa2, 0x06, 2, 0x41, 0x42]);

  it('keeps every field, unknown ones too, and appends the stage score, the score and the creation time', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = rng(seed);
      const n = Math.floor(random() * 30);
      const candidates = Array.from({ length: n }, (_, i) => {
        const c = create(common.CandidateSchema, {
          itemId: random() < 0.2 ? `ítem-ü-${seed}-${i}-ラ` : `item-${seed}-${i}`,
          score: random() < 0.2 ? 0 : Math.fround(random() * 4 - 2),
          channels: random() < 0.5 ? ['two_tower', 'popular'] : [],
          stageScores: random() < 0.5 ? [{ stage: common.Stage.RETRIEVAL, score: Math.fround(random()) }] : [],
          category: random() < 0.3 ? '' : `cat-${i % 3}`,
          createdAtMs: random() < 0.3 ? BigInt(1_600_000_000_000 + i) : 0n,
        });
        if (random() < 0.3) {
          const bytes = toBinary(common.CandidateSchema, c);
          const withUnknown = new Uint8Array([...bytes, ...unknownField(random)]);
          return fromBinary(common.CandidateSchema, withUnknown);
        }
        return c;
      });
      const scores = Float32Array.from({ length: n }, () => (random() < 0.1 ? 0 : random() * 2 - 1));
      const read = Array.from({ length: n }, () => (random() < 0.5 ? 1_700_000_000_000 + Math.floor(random() * 1e6) : 0));
      const order = bestFirst(scores);
      const count = Math.floor(random() * (n + 1));
      const encoded = encodeScoredCandidates(
        ranking.RankResponseSchema,
        common.Stage.RANKING,
        candidates,
        scores,
        order,
        count,
        'v',
        ['gone'],
        read,
      );
      const expected = create(ranking.RankResponseSchema, {
        candidates: Array.from(order.slice(0, count), (k) => {
          const c = candidates[k]!;
          const copy = fromBinary(common.CandidateSchema, toBinary(common.CandidateSchema, c));
          copy.score = scores[k]!;
          copy.stageScores.push(create(common.StageScoreSchema, { stage: common.Stage.RANKING, score: scores[k]! }));
          if (copy.createdAtMs <= 0n && read[k]! > 0) copy.createdAtMs = BigInt(read[k]!);
          return copy;
        }),
        modelVersion: 'v',
        missingItemIds: ['gone'],
      });
      expect(hex(ranking.RankResponseSchema, encoded)).toBe(
        hex(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, expected)),
      );
      // The same through the request reader, which notes each candidate's own creation time as it scans.
      const request = toBinary(ranking.RankRequestSchema, create(ranking.RankRequestSchema, { userId: 'u', candidates }));
      const { candidates: list } = readCandidateRequest(ranking.RankRequestSchema, request);
      const viaRequest = encodeFromList(ranking.RankResponseSchema, common.Stage.RANKING, list, scores, order, count, 'v', ['gone'], read);
      expect(hex(ranking.RankResponseSchema, viaRequest)).toBe(
        hex(ranking.RankResponseSchema, toBinary(ranking.RankResponseSchema, expected)),
      );
    }
  });
});

describe('encodeNewCandidates', () => {
  it('writes the bytes protobuf-es writes for the same candidates (zero scores, unicode, no category, no channels, shared lists)', () => {
    // Channel lists and categories shared between candidates, as the merge shares them (written once, then copied).
    const shared = ['popular', 'item_to_item'];
    const made = [
      { itemId: 'p1', score: 0.25, channels: shared, category: 'books' },
      { itemId: 'a', score: 0.5, channels: ['two_tower', 'popular'], category: 'books' },
      { itemId: 'ítem-ラ', score: 0, channels: [], category: '' },
      { itemId: 'x'.repeat(300), score: -1.25, channels: ['é'], category: 'ü' },
      { itemId: 'b', score: 1 / 61 + 1 / 62, channels: ['item_to_item'], category: '' },
      { itemId: 'p2', score: 0.125, channels: shared, category: 'books' },
      { itemId: 'p3', score: 2, channels: shared, category: '' },
    ];
    for (const list of [made, []]) {
      for (const stage of [common.Stage.RETRIEVAL, common.Stage.RANKING]) {
        const expected = toBinary(
          retrieval.RetrieveResponseSchema,
          create(retrieval.RetrieveResponseSchema, {
            candidates: list.map((c) => ({ ...c, stageScores: [{ stage, score: c.score }] })),
          }),
        );
        const columns = {
          itemIds: list.map((c) => c.itemId),
          scores: Float64Array.from(list, (c) => c.score),
          channels: list.map((c) => c.channels),
          categories: list.map((c) => c.category),
        };
        expect(Buffer.from(encodeNewCandidates(retrieval.RetrieveResponseSchema, stage, columns)).toString('hex')).toBe(
          Buffer.from(expected).toString('hex'),
        );
      }
    }
  });

  it('refuses columns of unequal lengths', () => {
    expect(() =>
      encodeNewCandidates(retrieval.RetrieveResponseSchema, common.Stage.RETRIEVAL, {
        itemIds: ['a', 'b'],
        scores: [1],
        channels: [[], []],
        categories: ['', ''],
      }),
    ).toThrow('unequal columns');
  });
});

describe('bestFirst', () => {
  it('orders by descending score, ties in the given order', () => {
    expect(Array.from(bestFirst(new Float32Array([0.5, 0.9, 0.5, 0.1, 0.9, 0])))).toEqual([1, 4, 0, 2, 3, 5]);
  });

  it('orders as a comparator sort does on random scores with ties, negatives, zeros of both signs and infinities', () => {
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const pool = [0, -0, 1, -1, 0.5, -0.5, 1e-30, -1e-30, 3.4e38, -3.4e38, Infinity, -Infinity];
    for (let trial = 0; trial < 200; trial++) {
      const n = Math.floor(random() * 600);
      const scores = new Float32Array(n);
      for (let k = 0; k < n; k++)
        scores[k] = random() < 0.3 ? pool[Math.floor(random() * pool.length)]! : (random() - 0.5) * 10 ** Math.floor(random() * 8 - 4);
      // The order every stage had: descending score, ties by index (-0 and 0 compare equal).
      const expected = Array.from({ length: n }, (_, k) => k).sort((a, b) => scores[b]! - scores[a]! || a - b);
      expect(Array.from(bestFirst(scores))).toEqual(expected);
    }
  });

  it('puts NaN scores last, in their given order, and reads a view of a larger buffer', () => {
    const buffer = new Float32Array([9, 0.2, NaN, 0.7, NaN, 0.7, -1, 9]);
    expect(Array.from(bestFirst(buffer.subarray(1, 7)))).toEqual([2, 4, 0, 5, 1, 3]);
    expect(Array.from(bestFirst(new Float32Array(0)))).toEqual([]);
  });
});
