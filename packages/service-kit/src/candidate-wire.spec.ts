import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { common, ranking } from '@recsys/contracts';
import {
  CandidateList,
  candidateCreatedAt,
  hasStageScore,
  readCandidateFields,
  readCandidateRequest,
  WireReader,
} from './candidate-wire.js';

/** A varint's bytes as protobuf-es writes a uint64. */
const varintBytes = (value: bigint) => new BinaryWriter().uint64(value).finish();

describe('WireReader.varint', () => {
  it('reads every length from one to ten bytes as protobuf-es writes them, exactly up to 2^53', () => {
    const values = [
      0n,
      1n,
      127n,
      128n,
      300n,
      16_383n,
      16_384n,
      2n ** 21n - 1n,
      2n ** 21n,
      2n ** 28n - 1n,
      2n ** 28n,
      2n ** 31n,
      2n ** 32n + 5n,
    ];
    values.push(1_764_590_400_000n, 2n ** 49n + 3n, 2n ** 53n - 1n);
    for (const value of values) {
      const bytes = varintBytes(value);
      const reader = new WireReader(bytes);
      expect([value, reader.varint()]).toEqual([value, Number(value)]);
      expect(reader.pos).toBe(bytes.length);
    }
    // Ten bytes (a 64-bit value, e.g. a negative int32): read inexactly, its whole length consumed.
    const negative = new BinaryWriter().int32(-1).finish();
    expect(negative).toHaveLength(10);
    const reader = new WireReader(negative);
    expect(reader.varint()).toBeGreaterThan(2 ** 63);
    expect(reader.pos).toBe(10);
  });

  it('reads a run of short and long values in turn (a created_at among tags and lengths)', () => {
    const writer = new BinaryWriter();
    const values: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const value = i % 3 === 0 ? 1_764_590_400_000 + i : i % 3 === 1 ? i % 120 : 300 + i;
      values.push(value);
      writer.uint64(BigInt(value));
    }
    const reader = new WireReader(writer.finish());
    const read: number[] = [];
    while (!reader.done) read.push(reader.varint());
    expect(read).toEqual(values);
  });

  it('refuses a truncated varint, one longer than ten bytes, and one past the reader’s end', () => {
    expect(() => new WireReader(Uint8Array.of(0x80)).varint()).toThrow('truncated varint');
    expect(() => new WireReader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80)).varint()).toThrow('truncated varint');
    expect(() => new WireReader(new Uint8Array(11).fill(0x80)).varint()).toThrow('varint longer than ten bytes');
    // The same bytes, the reader ending before the last one.
    const bytes = varintBytes(1_764_590_400_000n);
    expect(() => new WireReader(bytes, 0, bytes.length - 1).varint()).toThrow('truncated varint');
    expect(new WireReader(bytes).varint()).toBe(1_764_590_400_000);
  });
});

describe('readCandidateFields', () => {
  const candidate = (init: Parameters<typeof create<typeof common.CandidateSchema>>[1]) =>
    toBinary(common.CandidateSchema, create(common.CandidateSchema, init));

  it('reads what protobuf-es wrote: every field, stage scores in order, unknown fields skipped', () => {
    const fields = {
      itemId: 'item-42',
      score: 0.75,
      channels: ['two_tower', 'popular'],
      stageScores: [
        { stage: common.Stage.RETRIEVAL, score: 0.5 },
        { stage: common.Stage.RANKING, score: -0.25 },
      ],
      category: 'catégorie',
    };
    const base = candidate({ ...fields, createdAtMs: 1_764_590_400_000n });
    // An unknown field (number 99) of each wire type after the known ones.
    const unknown = new BinaryWriter()
      .tag(99, 0)
      .uint64(2n ** 40n)
      .tag(99, 2)
      .string('x')
      .tag(99, 5)
      .fixed32(7)
      .tag(99, 1)
      .fixed64(9n)
      .finish();
    const bytes = new Uint8Array([...base, ...unknown]);
    // As protobuf-es decodes it, but plain objects and created_at_ms a number.
    expect(readCandidateFields(bytes)).toEqual({ ...fields, createdAtMs: 1_764_590_400_000 });
    expect(candidateCreatedAt(bytes)).toBe(1_764_590_400_000);
    expect(hasStageScore(bytes, common.Stage.RANKING)).toBe(true);
    expect(hasStageScore(bytes, common.Stage.RERANKING)).toBe(false);
  });

  it('takes a known item id instead of reading it again', () => {
    expect(readCandidateFields(candidate({ itemId: 'a', score: 1 }), 'a').itemId).toBe('a');
    expect(readCandidateFields(candidate({ itemId: 'a', score: 1 })).itemId).toBe('a');
  });

  it('reads past a negative (ten-byte) stage enum to the fields after it', () => {
    const bytes = candidate({ itemId: 'n', stageScores: [{ stage: -1 as common.Stage, score: 2 }], category: 'after' });
    const fields = readCandidateFields(bytes);
    expect(fields.stageScores).toHaveLength(1);
    expect(fields.stageScores[0]!.score).toBe(2);
    expect(fields.category).toBe('after');
  });

  it('refuses truncated bytes', () => {
    const bytes = candidate({ itemId: 'item-1', category: 'c', createdAtMs: 1_764_590_400_000n });
    expect(() => readCandidateFields(bytes.subarray(0, bytes.length - 1))).toThrow(RangeError);
  });
});

describe('CandidateList', () => {
  const candidates = ['a-1', 'ü-2', 'c-3', 'd-4'].map((itemId, k) =>
    create(common.CandidateSchema, { itemId, score: k / 4, channels: ['two-tower'], createdAtMs: BigInt(1_700_000_000_000 + k) }),
  );
  const request = toBinary(ranking.RankRequestSchema, create(ranking.RankRequestSchema, { userId: 'u', candidates, limit: 2 }));

  it("keeps a request's candidates as ranges of its bytes: each the bytes protobuf-es wrote, ids and times as read", () => {
    const { candidates: list } = readCandidateRequest(ranking.RankRequestSchema, request);
    expect(list.length).toBe(4);
    expect(list.buffer).toBe(request);
    expect(list.ids).toEqual(['a-1', 'ü-2', 'c-3', 'd-4']);
    candidates.forEach((c, k) => {
      expect(Buffer.from(list.span(k))).toEqual(Buffer.from(toBinary(common.CandidateSchema, c)));
      expect(list.spanLength(k)).toBe(list.end(k) - list.start(k));
    });
    expect(Array.from(list.createdAtMs!)).toEqual([0, 1, 2, 3].map((k) => 1_700_000_000_000 + k));
    expect(list.decodeAll().map((c) => c.itemId)).toEqual(['a-1', 'ü-2', 'c-3', 'd-4']);
  });

  it('reads the ids from the bytes when made without them; slices and picks share the bytes', () => {
    const { candidates: read } = readCandidateRequest(ranking.RankRequestSchema, request);
    const bounds = Int32Array.from({ length: 8 }, (_, j) => (j % 2 === 0 ? read.start(j / 2) : read.end((j - 1) / 2)));
    const lazy = CandidateList.inBuffer(request, bounds);
    expect(lazy.ids).toEqual(read.ids);
    const picked = lazy.pick([3, 1]);
    expect(picked.ids).toEqual(['d-4', 'ü-2']);
    expect(picked.buffer).toBe(request);
    expect(picked.decode(0)).toEqual(candidates[3]);
    expect(read.pick([2]).createdAtMs).toEqual(Float64Array.of(1_700_000_000_002));
    expect(lazy.slice(2).ids).toEqual(['a-1', 'ü-2']);
    expect(lazy.slice(9)).toBe(lazy);
    const copied = CandidateList.fromSpans([read.span(2), read.span(0)]);
    expect(copied.ids).toEqual(['c-3', 'a-1']);
    expect(CandidateList.of(candidates).decodeAll()).toEqual(candidates);
  });

  it('refuses ranges outside the bytes, an odd count of bounds, ids that do not match, a position outside the list', () => {
    expect(() => CandidateList.inBuffer(request, Int32Array.of(0, request.length + 1))).toThrow(RangeError);
    expect(() => CandidateList.inBuffer(request, Int32Array.of(5, 4))).toThrow(RangeError);
    expect(() => CandidateList.inBuffer(request, Int32Array.of(0))).toThrow('two per candidate');
    expect(() => CandidateList.inBuffer(request, Int32Array.of(0, 1), ['a', 'b'])).toThrow('2 ids for 1 candidates');
    expect(() => CandidateList.empty.pick([0])).toThrow(RangeError);
  });
});
