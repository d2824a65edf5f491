import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { common, fieldNumber, WIRE } from '@recsys/contracts';
import { InvalidArgumentError } from './errors.js';

// The one home of reading candidate lists as bytes: the gateway reads stage answers with it, every stage reads its
// request's candidates with it (readCandidateRequest), and stage answers are written by copying the spans it keeps.
// Field numbers come from the generated descriptors, never from literals.
const CANDIDATE = {
  itemId: fieldNumber(common.CandidateSchema, 'itemId'),
  score: fieldNumber(common.CandidateSchema, 'score'),
  channels: fieldNumber(common.CandidateSchema, 'channels'),
  stageScores: fieldNumber(common.CandidateSchema, 'stageScores'),
  category: fieldNumber(common.CandidateSchema, 'category'),
  createdAtMs: fieldNumber(common.CandidateSchema, 'createdAtMs'),
};
const STAGE_SCORE = {
  stage: fieldNumber(common.StageScoreSchema, 'stage'),
  score: fieldNumber(common.StageScoreSchema, 'score'),
};
const ITEM_ID_TAG = CANDIDATE.itemId * 8 + WIRE.length;
const { varint: VARINT, fixed64: FIXED64, length: LENGTH, fixed32: FIXED32 } = WIRE;
const START_GROUP = 3;
const END_GROUP = 4;

// float32 from four little-endian bytes without a DataView per reader (protobuf's fixed32 is little-endian).
const floatBits = new Float32Array(1);
const floatBytes = new Uint8Array(floatBits.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads the fields of one protobuf message in buf[start, end): a tag, then a value the caller takes or skips. Throws
 * RangeError on bad bytes. Nested messages and strings are read in place (no subarray) where the caller allows.
 */
export class WireReader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /**
   * An unsigned varint up to 2^53 (beyond that, a 64-bit value read inexactly: callers treat it as out of range). Up to
   * four bytes (28 bits: tags, lengths, enums, counts) in int32 arithmetic; the bits above in varintHigh, in float64
   * from its first operation. One loop doing both had V8 speculate int32 on the sum and deoptimise on every long value
   * (a created_at_ms): ~18,000 deoptimisations in 20,000 re-ranking calls, half of their CPU.
   */
  varint(): number {
    const { buf, end } = this;
    let pos = this.pos;
    if (pos >= end) throw new RangeError('truncated varint');
    let byte = buf[pos++]!;
    if (byte < 0x80) {
      this.pos = pos;
      return byte;
    }
    let low = byte & 0x7f;
    for (let shift = 7; shift < 28; shift += 7) {
      if (pos >= end) throw new RangeError('truncated varint');
      byte = buf[pos++]!;
      low |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return low;
      }
    }
    this.pos = pos;
    return low + this.varintHigh();
  }

  /** The bits of a varint from the 29th on, as their value (a float64 throughout). */
  private varintHigh(): number {
    let value = 0;
    let scale = 268_435_456; // 2^28
    for (let k = 4; ; k++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      if (k >= 10) throw new RangeError('varint longer than ten bytes');
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  }

  /** The end of a length-delimited value whose length is read here; pos is left at its start. */
  lengthEnd(): number {
    const n = this.varint();
    const end = this.pos + n;
    if (end > this.end) throw new RangeError('truncated length-delimited field');
    return end;
  }

  bytes(): Uint8Array {
    const end = this.lengthEnd();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** A length-delimited value as UTF-8 text (wireText), read in place. */
  text(): string {
    const end = this.lengthEnd();
    const out = wireText(this.buf, this.pos, end);
    this.pos = end;
    return out;
  }

  /** A length-delimited value as a reader of its own (a nested message), read in place. */
  message(): WireReader {
    const end = this.lengthEnd();
    const out = new WireReader(this.buf, this.pos, end);
    this.pos = end;
    return out;
  }

  float(): number {
    if (this.pos + 4 > this.end) throw new RangeError('truncated fixed32');
    const { buf, pos } = this;
    if (LITTLE_ENDIAN) {
      floatBytes[0] = buf[pos]!;
      floatBytes[1] = buf[pos + 1]!;
      floatBytes[2] = buf[pos + 2]!;
      floatBytes[3] = buf[pos + 3]!;
    } else {
      floatBytes[3] = buf[pos]!;
      floatBytes[2] = buf[pos + 1]!;
      floatBytes[1] = buf[pos + 2]!;
      floatBytes[0] = buf[pos + 3]!;
    }
    this.pos += 4;
    return floatBits[0]!;
  }

  /** Skips the value of a field of the given wire type (a group up to its end tag, as protobuf-es skips it). */
  skip(wireType: number, fieldNo = 0): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === LENGTH) this.pos = this.lengthEnd();
    else if (wireType === FIXED32) this.pos += 4;
    else if (wireType === START_GROUP) {
      for (;;) {
        if (this.done) throw new RangeError('truncated group');
        const tag = this.varint();
        if ((tag & 7) === END_GROUP) {
          if (tag >>> 3 !== fieldNo) throw new RangeError('mismatched end of group');
          break;
        }
        this.skip(tag & 7, tag >>> 3);
      }
    } else throw new RangeError(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new RangeError('truncated field');
  }

  /** The next tag; throws on field number 0 (never valid). */
  tag(): number {
    const tag = this.varint();
    if (tag >>> 3 === 0) throw new RangeError('field number 0');
    return tag;
  }
}

const decoder = new TextDecoder();

/** A UTF-8 string from buf[start, end); short ASCII (every id here) without the native decoder. */
export function wireText(buf: Uint8Array, start = 0, end = buf.length): string {
  if (end - start > 64) return decoder.decode(buf.subarray(start, end));
  let out = '';
  for (let k = start; k < end; k++) {
    const byte = buf[k]!;
    if (byte >= 0x80) return decoder.decode(buf.subarray(start, end));
    out += String.fromCharCode(byte);
  }
  return out;
}

/**
 * The item id of one Candidate message: its first field as every writer here puts it (protobuf-es writes item_id first;
 * stages append only other fields), else found by scanning.
 */
export function candidateItemId(span: Uint8Array): string {
  const [start, end] = candidateItemIdRange(span, 0, span.length);
  return wireText(span, start, end);
}

/**
 * Where the item id of the Candidate message in buf[start, end) lies: right after its first tag as every writer here puts
 * it, else found by scanning (the last item_id wins, as in protobuf; an empty range when none).
 */
function candidateItemIdRange(buf: Uint8Array, start: number, end: number): [number, number] {
  if (end - start >= 2 && buf[start] === ITEM_ID_TAG && buf[start + 1]! < 0x80 && start + 2 + buf[start + 1]! <= end) {
    return [start + 2, start + 2 + buf[start + 1]!];
  }
  let range: [number, number] = [start, start];
  const reader = new WireReader(buf, start, end);
  while (!reader.done) {
    const tag = reader.tag();
    if (tag >>> 3 === CANDIDATE.itemId && (tag & 7) === LENGTH) {
      const fieldEnd = reader.lengthEnd();
      range = [reader.pos, fieldEnd];
      reader.pos = fieldEnd;
    } else reader.skip(tag & 7, tag >>> 3);
  }
  return range;
}

/**
 * Reads candidate `index` in buf[start, end), every field checked to be well-formed: where its item id lies (the last
 * item_id wins, as in protobuf; an empty range when none) into idBounds[2 index, 2 index + 1], its created_at_ms into
 * created[index]. The hot loop of reading a request, so positions rather than readers or views, and no string.
 */
function scanCandidate(buf: Uint8Array, start: number, end: number, created: Float64Array, idBounds: Int32Array, index: number): void {
  idBounds[2 * index] = start;
  idBounds[2 * index + 1] = start;
  let pos = start;
  while (pos < end) {
    // The tag: one byte for every field of Candidate; longer ones (unknown fields) read in full.
    let tag = buf[pos++]!;
    if (tag >= 0x80) {
      tag &= 0x7f;
      for (let shift = 7; ; shift += 7) {
        if (pos >= end || shift > 28) throw new RangeError('bad tag');
        const byte = buf[pos++]!;
        tag |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
    }
    const wire = tag & 7;
    if (tag >>> 3 === 0) throw new RangeError('field number 0');
    if (wire === LENGTH) {
      let n = 0;
      for (let shift = 0; ; shift += 7) {
        if (pos >= end || shift > 28) throw new RangeError('bad length');
        const byte = buf[pos++]!;
        n |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
      if (n < 0 || pos + n > end) throw new RangeError('truncated length-delimited field');
      if (tag >>> 3 === CANDIDATE.itemId) {
        idBounds[2 * index] = pos;
        idBounds[2 * index + 1] = pos + n;
      }
      pos += n;
    } else if (wire === VARINT) {
      const from = pos;
      for (let k = 0; ; k++) {
        if (pos >= end || k >= 10) throw new RangeError('bad varint');
        if (buf[pos++]! < 0x80) break;
      }
      if (tag >>> 3 === CANDIDATE.createdAtMs) {
        let value = 0;
        for (let k = from, scale = 1; k < pos; k++, scale *= 128) value += (buf[k]! & 0x7f) * scale;
        created[index] = safePositive(value);
      }
    } else if (wire === FIXED32) pos += 4;
    else if (wire === FIXED64) pos += 8;
    else {
      // Groups (deprecated, never written here): the reader skips them.
      const reader = new WireReader(buf, pos, end);
      reader.skip(wire, tag >>> 3);
      pos = reader.pos;
    }
    if (pos > end) throw new RangeError('truncated field');
  }
}

/** What a stage reads of one candidate (re-ranking reads all of it; ranking only its creation time). */
export interface CandidateFields {
  itemId: string;
  score: number;
  channels: string[];
  stageScores: { stage: number; score: number }[];
  category: string;
  /** 0 when absent, not positive or beyond 2^53. */
  createdAtMs: number;
}

/**
 * One Candidate's fields read from its bytes, as protobuf-es would decode them (unknown fields skipped). `itemId`, when
 * the caller has it already (readCandidateRequest's ids: the same last-wins reading), is taken rather than read again.
 */
export function readCandidateFields(span: Uint8Array, itemId?: string): CandidateFields {
  const out: CandidateFields = { itemId: itemId ?? '', score: 0, channels: [], stageScores: [], category: '', createdAtMs: 0 };
  const reader = new WireReader(span);
  while (!reader.done) {
    const tag = reader.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === CANDIDATE.itemId && wire === LENGTH && itemId === undefined) out.itemId = reader.text();
    else if (field === CANDIDATE.score && wire === FIXED32) out.score = reader.float();
    else if (field === CANDIDATE.channels && wire === LENGTH) out.channels.push(reader.text());
    else if (field === CANDIDATE.stageScores && wire === LENGTH) out.stageScores.push(readStageScore(reader.message()));
    else if (field === CANDIDATE.category && wire === LENGTH) out.category = reader.text();
    else if (field === CANDIDATE.createdAtMs && wire === VARINT) out.createdAtMs = safePositive(reader.varint());
    else reader.skip(wire, field);
  }
  return out;
}

/** A candidate's created_at_ms from its bytes (the last occurrence); 0 when absent, not positive or beyond 2^53. */
export function candidateCreatedAt(span: Uint8Array): number {
  let created = 0;
  const reader = new WireReader(span);
  while (!reader.done) {
    const tag = reader.tag();
    if (tag >>> 3 === CANDIDATE.createdAtMs && (tag & 7) === VARINT) created = safePositive(reader.varint());
    else reader.skip(tag & 7, tag >>> 3);
  }
  return created;
}

/** Whether the candidate already carries a score of `stage`. */
export function hasStageScore(span: Uint8Array, stage: number): boolean {
  const reader = new WireReader(span);
  while (!reader.done) {
    const tag = reader.tag();
    if (tag >>> 3 === CANDIDATE.stageScores && (tag & 7) === LENGTH) {
      if (readStageScore(reader.message()).stage === stage) return true;
    } else reader.skip(tag & 7, tag >>> 3);
  }
  return false;
}

function readStageScore(reader: WireReader): { stage: number; score: number } {
  const out = { stage: 0, score: 0 };
  while (!reader.done) {
    const tag = reader.tag();
    // An enum is an int32: its low 32 bits, signed (a negative one takes ten bytes and reads inexactly above 2^53).
    if (tag >>> 3 === STAGE_SCORE.stage && (tag & 7) === VARINT) out.stage = reader.varint() | 0;
    else if (tag >>> 3 === STAGE_SCORE.score && (tag & 7) === FIXED32) out.score = reader.float();
    else reader.skip(tag & 7, tag >>> 3);
  }
  return out;
}

const safePositive = (n: number) => (n > 0 && Number.isSafeInteger(n) ? n : 0);

/**
 * Candidates kept as the protobuf bytes each arrived in, with their item ids: passed on to the next stage, or written
 * into an answer, by copying bytes; whole candidates are decoded only where a caller asks (the gateway's top k, debug).
 *
 * The bytes stay where they came (the message that carried them), each candidate a range of it: no view object per
 * candidate (a thousand per request and hop). The ids stay ranges of those bytes (idBounds) until asked for as strings,
 * unless the list was made with them.
 */
export class CandidateList {
  private constructor(
    /** Candidate k's bytes are buffer[bounds[2k], bounds[2k + 1]). */
    readonly buffer: Uint8Array,
    private readonly bounds: Int32Array,
    private idList: readonly string[] | undefined,
    /** Each candidate's created_at_ms (0 when it has none), where the reader saw them (readCandidateRequest). */
    readonly createdAtMs?: Float64Array,
    /** Candidate k's item id is buffer[idBoundList[2k], idBoundList[2k + 1]) (found on first use when not given). */
    private idBoundList?: Int32Array,
  ) {}

  static readonly empty = new CandidateList(new Uint8Array(0), new Int32Array(0), []);

  /**
   * Candidates at ranges of one buffer: candidate k at buffer[bounds[2k], bounds[2k + 1]). `ids`, when given, must be
   * their item ids (else each is read from its bytes when first asked for), as `idBounds` must be where they lie.
   */
  static inBuffer(
    buffer: Uint8Array,
    bounds: Int32Array,
    ids?: readonly string[],
    createdAtMs?: Float64Array,
    idBounds?: Int32Array,
  ): CandidateList {
    if (bounds.length % 2 !== 0) throw new RangeError(`bounds holds ${bounds.length} numbers: two per candidate`);
    for (let k = 0; k < bounds.length; k += 2) {
      if (!(bounds[k]! >= 0 && bounds[k]! <= bounds[k + 1]! && bounds[k + 1]! <= buffer.length)) {
        throw new RangeError(`candidate ${k / 2}: [${bounds[k]}, ${bounds[k + 1]}) is not within the ${buffer.length} bytes`);
      }
    }
    if (ids !== undefined && ids.length !== bounds.length / 2)
      throw new RangeError(`${ids.length} ids for ${bounds.length / 2} candidates`);
    if (idBounds !== undefined && idBounds.length !== bounds.length) {
      throw new RangeError(`${idBounds.length / 2} id ranges for ${bounds.length / 2} candidates`);
    }
    return new CandidateList(buffer, bounds, ids, createdAtMs, idBounds);
  }

  /** Candidates each in bytes of its own (copied into one buffer). */
  static fromSpans(spans: readonly Uint8Array[], ids?: readonly string[]): CandidateList {
    let size = 0;
    for (const span of spans) size += span.length;
    const buffer = new Uint8Array(size);
    const bounds = new Int32Array(spans.length * 2);
    let pos = 0;
    spans.forEach((span, k) => {
      buffer.set(span, pos);
      bounds[2 * k] = pos;
      bounds[2 * k + 1] = pos += span.length;
    });
    return CandidateList.inBuffer(buffer, bounds, ids);
  }

  static of(candidates: readonly common.Candidate[]): CandidateList {
    return CandidateList.fromSpans(
      candidates.map((c) => toBinary(common.CandidateSchema, c)),
      candidates.map((c) => c.itemId),
    );
  }

  get length(): number {
    return this.bounds.length >> 1;
  }

  /** The item ids, in order (read from the bytes on first use when the list was made without them). */
  get ids(): readonly string[] {
    if (this.idList === undefined) {
      const ids = new Array<string>(this.length);
      const idBounds = this.idBounds;
      for (let k = 0; k < ids.length; k++) ids[k] = wireText(this.buffer, idBounds[2 * k], idBounds[2 * k + 1]);
      this.idList = ids;
    }
    return this.idList;
  }

  /** Where each item id lies in `buffer`: candidate k's at [idBounds[2k], idBounds[2k + 1]) (found on first use). */
  get idBounds(): Int32Array {
    if (this.idBoundList === undefined) {
      const idBounds = new Int32Array(this.bounds.length);
      for (let k = 0; k < this.length; k++) {
        const [start, end] = candidateItemIdRange(this.buffer, this.bounds[2 * k]!, this.bounds[2 * k + 1]!);
        idBounds[2 * k] = start;
        idBounds[2 * k + 1] = end;
      }
      this.idBoundList = idBounds;
    }
    return this.idBoundList;
  }

  /** Candidate k's item id (from its bytes, unless the list has the strings). */
  id(k: number): string {
    if (this.idList !== undefined) return this.idList[k]!;
    const idBounds = this.idBounds;
    return wireText(this.buffer, idBounds[2 * k], idBounds[2 * k + 1]);
  }

  /** Candidate k's bytes as a view (one object: for a few candidates, not a loop over all). */
  span(k: number): Uint8Array {
    return this.buffer.subarray(this.start(k), this.end(k));
  }

  start(k: number): number {
    return this.bounds[2 * k]!;
  }

  end(k: number): number {
    return this.bounds[2 * k + 1]!;
  }

  spanLength(k: number): number {
    return this.bounds[2 * k + 1]! - this.bounds[2 * k]!;
  }

  slice(count: number): CandidateList {
    if (count >= this.length) return this;
    return new CandidateList(
      this.buffer,
      this.bounds.subarray(0, 2 * count),
      this.idList?.slice(0, count),
      this.createdAtMs?.subarray(0, count),
      this.idBoundList?.subarray(0, 2 * count),
    );
  }

  /** The candidates at these positions, in this order (the same bytes). */
  pick(positions: readonly number[]): CandidateList {
    const bounds = new Int32Array(positions.length * 2);
    positions.forEach((k, j) => {
      if (!(k >= 0 && k < this.length)) throw new RangeError(`position ${k} is outside 0..${this.length - 1}`);
      bounds[2 * j] = this.bounds[2 * k]!;
      bounds[2 * j + 1] = this.bounds[2 * k + 1]!;
    });
    const ids = this.idList === undefined ? undefined : positions.map((k) => this.idList![k]!);
    const created = this.createdAtMs === undefined ? undefined : Float64Array.from(positions, (k) => this.createdAtMs![k]!);
    let idBounds: Int32Array | undefined;
    if (this.idBoundList !== undefined) {
      const from = this.idBoundList;
      idBounds = new Int32Array(positions.length * 2);
      positions.forEach((k, j) => {
        idBounds![2 * j] = from[2 * k]!;
        idBounds![2 * j + 1] = from[2 * k + 1]!;
      });
    }
    return new CandidateList(this.buffer, bounds, ids, created, idBounds);
  }

  decode(index: number): common.Candidate {
    return fromBinary(common.CandidateSchema, this.span(index));
  }

  decodeAll(): common.Candidate[] {
    return Array.from({ length: this.length }, (_, k) => this.decode(k));
  }
}

/**
 * Copies src[start, end) into dst at `at` and returns where it ended: a short range (a candidate) by a loop, since a
 * subarray to set from would be one object per candidate; a long one by `set`.
 */
export function copyRange(dst: Uint8Array, at: number, src: Uint8Array, start: number, end: number): number {
  if (end - start <= 64) {
    for (let k = start; k < end; k++) dst[at++] = src[k]!;
    return at;
  }
  dst.set(src.subarray(start, end), at);
  return at + end - start;
}

/** Two numbers per candidate (its start and end), grown as a reader finds candidates. */
export class CandidateBounds {
  private bounds = new Int32Array(128);
  count = 0;

  add(start: number, end: number): void {
    if (2 * this.count === this.bounds.length) {
      const grown = new Int32Array(this.bounds.length * 2);
      grown.set(this.bounds);
      this.bounds = grown;
    }
    this.bounds[2 * this.count] = start;
    this.bounds[2 * this.count + 1] = end;
    this.count++;
  }

  /** The bounds found (a view of the grown array). */
  finish(): Int32Array {
    return this.bounds.subarray(0, 2 * this.count);
  }
}

/** A request whose candidate list stayed bytes: every other field decoded by protobuf-es, `candidates` left empty there. */
export interface CandidateRequest<Desc extends DescMessage> {
  message: MessageShape<Desc>;
  candidates: CandidateList;
}

const candidateFieldNumbers = new WeakMap<DescMessage, number>();

/**
 * Reads a stage request (PrerankRequest, RankRequest, RerankRequest) without decoding its candidate list: the
 * candidates stay the bytes they came in (with where their ids lie), the rest of the message (user, context, limit, the
 * passed-down user state) is decoded by protobuf-es. Malformed bytes are the caller's error (INVALID_ARGUMENT naming the
 * field: `candidates[3]` for a bad candidate).
 */
export function readCandidateRequest<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): CandidateRequest<Desc> {
  let number = candidateFieldNumbers.get(schema);
  if (number === undefined) candidateFieldNumbers.set(schema, (number = fieldNumber(schema, 'candidates')));
  const reader = new WireReader(bytes);
  const bounds = new CandidateBounds();
  let created = new Float64Array(64);
  let idBounds = new Int32Array(128);
  // The other fields' bytes, in order: the runs between candidates.
  const rest: Uint8Array[] = [];
  let restStart = 0;
  try {
    while (!reader.done) {
      const start = reader.pos;
      const tag = reader.tag();
      if (tag >>> 3 === number && (tag & 7) === LENGTH) {
        if (start > restStart) rest.push(bytes.subarray(restStart, start));
        const end = reader.lengthEnd();
        const from = reader.pos;
        reader.pos = end;
        const index = bounds.count;
        try {
          // Every field walked once: a malformed candidate is refused here, not passed on.
          if (index === created.length) {
            const grown = new Float64Array(created.length * 2);
            grown.set(created);
            created = grown;
            const grownBounds = new Int32Array(idBounds.length * 2);
            grownBounds.set(idBounds);
            idBounds = grownBounds;
          }
          scanCandidate(bytes, from, end, created, idBounds, index);
        } catch (error) {
          throw new InvalidArgumentError(`candidates[${index}]`, `is not a valid Candidate message (${(error as Error).message})`);
        }
        bounds.add(from, end);
        restStart = end;
      } else {
        reader.skip(tag & 7, tag >>> 3);
      }
    }
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    throw new InvalidArgumentError('request', `is not a valid ${schema.typeName} message (${(error as Error).message})`);
  }
  if (restStart < bytes.length) rest.push(bytes.subarray(restStart));
  let message: MessageShape<Desc>;
  try {
    message = fromBinary(schema, rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  } catch (error) {
    throw new InvalidArgumentError('request', `is not a valid ${schema.typeName} message (${(error as Error).message})`);
  }
  const count = bounds.count;
  return {
    message,
    candidates: CandidateList.inBuffer(bytes, bounds.finish(), undefined, created.subarray(0, count), idBounds.subarray(0, 2 * count)),
  };
}
