import type { DescMessage } from '@bufbuild/protobuf';
import { common, fieldTag, preranking, ranking, sharedFieldNumbers, WIRE } from '@recsys/contracts';
import { candidateCreatedAt, type CandidateList, copyRange } from './candidate-wire.js';
import { EncodedMessage } from './encoded-message.js';

// Tags (field << 3 | wire type) from the generated descriptors: RankResponse and PrerankResponse share
// candidates, model_version (checked below), RankResponse adds missing_item_ids.
const CANDIDATE = fieldTag(ranking.RankResponseSchema, 'candidates', WIRE.length);
const MODEL_VERSION = fieldTag(ranking.RankResponseSchema, 'modelVersion', WIRE.length);
const MISSING_ID = fieldTag(ranking.RankResponseSchema, 'missingItemIds', WIRE.length);
sharedFieldNumbers([ranking.RankResponseSchema, preranking.PrerankResponseSchema], ['candidates', 'modelVersion']);
const SCORE = fieldTag(common.CandidateSchema, 'score', WIRE.fixed32);
const STAGE_SCORE = fieldTag(common.CandidateSchema, 'stageScores', WIRE.length);
const CREATED_AT = fieldTag(common.CandidateSchema, 'createdAtMs', WIRE.varint);
const ITEM_ID = fieldTag(common.CandidateSchema, 'itemId', WIRE.length);
const CHANNEL = fieldTag(common.CandidateSchema, 'channels', WIRE.length);
const CATEGORY = fieldTag(common.CandidateSchema, 'category', WIRE.length);
const STAGE = fieldTag(common.StageScoreSchema, 'stage', WIRE.varint);
const STAGE_SCORE_VALUE = fieldTag(common.StageScoreSchema, 'score', WIRE.fixed32);
// Every tag here fits one byte (fields 1–15).
for (const tag of [
  CANDIDATE,
  MODEL_VERSION,
  MISSING_ID,
  ITEM_ID,
  SCORE,
  CHANNEL,
  CATEGORY,
  STAGE_SCORE,
  CREATED_AT,
  STAGE,
  STAGE_SCORE_VALUE,
]) {
  if (tag >= 0x80) throw new TypeError(`tag ${tag} takes more than one byte: the size arithmetic below assumes one`);
}

/** Bytes of `n` (>= 0) as a protobuf varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** UTF-8 length; ids and names are usually ASCII, which needs no native call. */
function utf8Length(text: string): number {
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) >= 0x80) return Buffer.byteLength(text, 'utf8');
  return text.length;
}

/** A string field's size written always (an element of a repeated field, a value set on purpose): tag, length, bytes. */
function textFieldSize(text: string): number {
  const n = utf8Length(text);
  return 1 + varintSize(n) + n;
}

/** A string field's size: tag, length, bytes (0 when empty: proto3 leaves it out). */
function stringFieldSize(text: string): number {
  return text === '' ? 0 : textFieldSize(text);
}

function stageScoreSize(stage: number, score: number): number {
  // An enum is an int32: negative values take 10 bytes.
  return (stage !== 0 ? 1 + (stage < 0 ? 10 : varintSize(stage)) : 0) + (score !== 0 ? 5 : 0);
}

class Writer {
  pos = 0;
  readonly buf: Buffer;
  private readonly view: DataView;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, size);
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  int32(n: number): void {
    if (n >= 0) return this.varint(n);
    // Negative int32: the 64-bit two's complement, ten bytes.
    let big = BigInt.asUintN(64, BigInt(n));
    for (let k = 0; k < 9; k++) {
      this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.buf[this.pos++] = Number(big);
  }

  /** A proto3 singular string: left out when empty. */
  string(tag: number, text: string): void {
    if (text !== '') this.text(tag, text);
  }

  /** A string written even when empty (an element of a repeated field). */
  text(tag: number, text: string): void {
    this.textOfLength(tag, text, utf8Length(text));
  }

  /** string() of a text whose UTF-8 length the caller has. */
  stringOfLength(tag: number, text: string, n: number): void {
    if (n > 0) this.textOfLength(tag, text, n);
  }

  private textOfLength(tag: number, text: string, n: number): void {
    this.byte(tag);
    this.varint(n);
    if (n === text.length) for (let k = 0; k < n; k++) this.buf[this.pos++] = text.charCodeAt(k);
    else this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  float(tag: number, value: number): void {
    if (value === 0) return;
    this.byte(tag);
    this.fixed32(value);
  }

  fixed32(value: number): void {
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
  }

  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** bytes[start, end), copied without a view of it (copyRange). */
  range(bytes: Uint8Array, start: number, end: number): void {
    this.pos = copyRange(this.buf, this.pos, bytes, start, end);
  }

  stageScore(stage: number, score: number): void {
    this.byte(STAGE_SCORE);
    this.varint(stageScoreSize(stage, score));
    if (stage !== 0) {
      this.byte(STAGE);
      this.int32(stage);
    }
    this.float(STAGE_SCORE_VALUE, score);
  }
}

/** The answers that are scored candidates: `{ candidates = 1, model_version = 2 }`, RankResponse also `missing_item_ids = 3`. */
export type ScoredCandidatesSchema = typeof ranking.RankResponseSchema | typeof preranking.PrerankResponseSchema;

/**
 * A stage's answer written straight to protobuf bytes: candidates in `order` (the first `count`), each copied as the
 * bytes the caller sent (unknown fields too) with `scores[k]` appended as its score (a later value of a singular field
 * replaces an earlier one when decoded) and as `stage`'s score (appended to stage_scores), and with `createdAtMs[k]` (the
 * item's creation time as this stage read it) appended when the candidate came without one. No candidate is decoded or
 * re-encoded: decoding and building hundreds of Candidate messages only to serialise them was a large share of a
 * request's time.
 */
export function encodeScoredCandidates<S extends ScoredCandidatesSchema>(
  schema: S,
  stage: common.Stage,
  candidates: CandidateList,
  scores: Float32Array,
  order: ArrayLike<number>,
  count: number,
  modelVersion: string,
  missingItemIds: readonly string[] = [],
  createdAtMs?: ArrayLike<number>,
): EncodedMessage<S> {
  if (missingItemIds.length > 0 && !schema.fields.some((f) => f.localName === 'missingItemIds')) {
    throw new TypeError(`${schema.typeName} has no missing_item_ids`);
  }
  const sizes = new Array<number>(count);
  const created = new Array<number>(count);
  let total = stringFieldSize(modelVersion);
  for (const id of missingItemIds) total += textFieldSize(id);
  for (let r = 0; r < count; r++) {
    const k = order[r]!;
    const score = Math.fround(scores[k]!);
    // The score always (5 bytes, a zero too): it must replace the one the candidate came with.
    let size = candidates.spanLength(k) + 5;
    const own = stageScoreSize(stage, score);
    size += 1 + varintSize(own) + own;
    const read = createdAtMs?.[k];
    // Only when the candidate has none of its own: the first stage that read the item set it.
    const ownCreated = read !== undefined && read > 0 && Number.isSafeInteger(read) ? ownCreatedAt(candidates, k) : 1;
    const add = ownCreated === 0 ? read! : 0;
    if (add > 0) size += 1 + varintSize(add);
    created[r] = add;
    sizes[r] = size;
    total += 1 + varintSize(size) + size;
  }
  const w = new Writer(total);
  for (let r = 0; r < count; r++) {
    const k = order[r]!;
    const score = Math.fround(scores[k]!);
    w.byte(CANDIDATE);
    w.varint(sizes[r]!);
    w.range(candidates.buffer, candidates.start(k), candidates.end(k));
    w.byte(SCORE);
    w.fixed32(score);
    w.stageScore(stage, score);
    if (created[r]! > 0) {
      w.byte(CREATED_AT);
      w.varint(created[r]!);
    }
  }
  w.string(MODEL_VERSION, modelVersion);
  for (const id of missingItemIds) w.text(MISSING_ID, id);
  if (w.pos !== total) throw new Error(`encodeScoredCandidates: wrote ${w.pos} bytes of ${total}`);
  return new EncodedMessage(schema, w.buf);
}

/** A candidate's own created_at_ms: as the request reader saw it, else read from its bytes. */
const ownCreatedAt = (candidates: CandidateList, k: number) => candidates.createdAtMs?.[k] ?? candidateCreatedAt(candidates.span(k));

/** A candidate of an answer as the bytes it came in, with what the stage changed appended. */
export interface CandidateEdit {
  span: Uint8Array;
  score: number;
  /** Appended to stage_scores with `score`. */
  stage: common.Stage;
  /** Channels to append (merged from a repeat of the candidate). */
  addChannels?: readonly string[];
  /** Replaces the category (a later value wins when decoded); undefined leaves it. */
  category?: string;
  /** Replaces created_at_ms; undefined leaves it. */
  createdAtMs?: number;
}

/**
 * The candidates field of an answer (its tag from `schema`), each candidate an edit of the bytes it came in or, where a
 * stage made a candidate anew or had to rewrite one, bytes of its own.
 */
export function encodeCandidateField(schema: DescMessage, candidates: readonly (CandidateEdit | Uint8Array)[]): Uint8Array {
  return encodeCandidates(
    'encodeCandidateField',
    schema,
    candidates.length,
    (r) => candidateEditSize(candidates[r]!),
    (w, r) => writeCandidateEdit(w, candidates[r]!),
  );
}

function candidateEditSize(c: CandidateEdit | Uint8Array): number {
  if (c instanceof Uint8Array) return c.length;
  let size = c.span.length + 5;
  for (const channel of c.addChannels ?? []) size += textFieldSize(channel);
  if (c.category !== undefined) size += textFieldSize(c.category);
  if (c.createdAtMs !== undefined) size += 1 + varintSize(c.createdAtMs);
  const own = stageScoreSize(c.stage, Math.fround(c.score));
  return size + 1 + varintSize(own) + own;
}

function writeCandidateEdit(w: Writer, c: CandidateEdit | Uint8Array): void {
  if (c instanceof Uint8Array) {
    w.raw(c);
    return;
  }
  const score = Math.fround(c.score);
  w.raw(c.span);
  w.byte(SCORE);
  w.fixed32(score);
  for (const channel of c.addChannels ?? []) w.text(CHANNEL, channel);
  if (c.category !== undefined) w.text(CATEGORY, c.category);
  if (c.createdAtMs !== undefined) {
    w.byte(CREATED_AT);
    w.varint(c.createdAtMs);
  }
  w.stageScore(c.stage, score);
}

/**
 * Candidates a stage makes (retrieval's), as columns: candidate r is what protobuf-es would write for `{ item_id:
 * itemIds[r], score: scores[r], channels: channels[r], stage_scores: [{ stage, score: scores[r] }], category:
 * categories[r] }` (columns, not an object per candidate: a thousand per answer).
 */
export interface NewCandidates {
  readonly itemIds: readonly string[];
  readonly scores: ArrayLike<number>;
  readonly channels: readonly (readonly string[])[];
  /** '' for none. */
  readonly categories: readonly string[];
}

/** The candidates field of an answer (its tag from `schema`) holding new candidates of `stage`, byte for byte as protobuf-es writes them. */
export function encodeNewCandidates(schema: DescMessage, stage: common.Stage, candidates: NewCandidates): Uint8Array {
  const { itemIds, scores, channels, categories } = candidates;
  const count = itemIds.length;
  if (scores.length !== count || channels.length !== count || categories.length !== count) {
    throw new RangeError(
      `new candidates of unequal columns: ${count} ids, ${scores.length} scores, ${channels.length} channel lists, ${categories.length} categories`,
    );
  }
  // The channel lists and categories are a handful of values shared by every candidate (the merge shares its channel
  // arrays): each written once, then copied; each id's UTF-8 length found once.
  const channelBytes = new Map<readonly string[], Uint8Array>();
  const categoryBytes = new Map<string, Uint8Array>();
  const channelFields = (list: readonly string[]) => {
    let bytes = channelBytes.get(list);
    if (bytes === undefined) {
      let size = 0;
      for (const channel of list) size += textFieldSize(channel);
      const w = new Writer(size);
      for (const channel of list) w.text(CHANNEL, channel);
      channelBytes.set(list, (bytes = w.buf));
    }
    return bytes;
  };
  const categoryField = (category: string) => {
    let bytes = categoryBytes.get(category);
    if (bytes === undefined) {
      const w = new Writer(stringFieldSize(category));
      w.string(CATEGORY, category);
      categoryBytes.set(category, (bytes = w.buf));
    }
    return bytes;
  };
  if (newIdLengths.length < count) newIdLengths = new Int32Array(Math.max(count, 2 * newIdLengths.length));
  const idLengths = newIdLengths;
  return encodeCandidates(
    'encodeNewCandidates',
    schema,
    count,
    (r) => {
      const score = Math.fround(scores[r]!);
      const id = itemIds[r]!;
      const idLength = utf8Length(id);
      idLengths[r] = idLength;
      let size = (idLength > 0 ? 1 + varintSize(idLength) + idLength : 0) + (score !== 0 ? 5 : 0);
      size += channelFields(channels[r]!).length + categoryField(categories[r]!).length;
      const own = stageScoreSize(stage, score);
      return size + 1 + varintSize(own) + own;
    },
    (w, r) => {
      const score = Math.fround(scores[r]!);
      w.stringOfLength(ITEM_ID, itemIds[r]!, idLengths[r]!);
      w.float(SCORE, score);
      const channelField = channelBytes.get(channels[r]!)!;
      w.range(channelField, 0, channelField.length);
      w.stageScore(stage, score);
      const category = categoryBytes.get(categories[r]!)!;
      w.range(category, 0, category.length);
    },
  );
}

/** encodeNewCandidates' ids' UTF-8 lengths, kept between calls (an encoding is synchronous). */
let newIdLengths = new Int32Array(0);

/**
 * The candidates field (its tag from `schema`) as one exactly sized buffer: every candidate's size first, then each
 * behind its tag and length, written by `write`; `what` names the caller when the sizes and the bytes disagree.
 */
function encodeCandidates(
  what: string,
  schema: DescMessage,
  count: number,
  sizeOf: (r: number) => number,
  write: (w: Writer, r: number) => void,
): Uint8Array {
  const tag = fieldTag(schema, 'candidates', WIRE.length);
  if (tag >= 0x80) throw new TypeError(`${schema.typeName}.candidates takes a tag of more than one byte`);
  const sizes = new Array<number>(count);
  let total = 0;
  for (let r = 0; r < count; r++) {
    const size = sizeOf(r);
    sizes[r] = size;
    total += 1 + varintSize(size) + size;
  }
  const w = new Writer(total);
  for (let r = 0; r < count; r++) {
    w.byte(tag);
    w.varint(sizes[r]!);
    write(w, r);
  }
  if (w.pos !== total) throw new Error(`${what}: wrote ${w.pos} bytes of ${total}`);
  return w.buf;
}

/**
 * Candidate indices by descending score; ties keep the caller's order (-0 ties with 0); NaN scores come last.
 * A stable LSD radix sort on the scores' bits, four byte passes (a pass every key agrees on is skipped): a thousand
 * candidates took 0.3-0.5 ms through TypedArray.sort with a comparator, a large share of pre-ranking's own work.
 */
export function bestFirst(scores: Float32Array): Uint32Array {
  const n = scores.length;
  let keys = new Uint32Array(n);
  let order = new Uint32Array(n);
  const bits = new Uint32Array(scores.buffer, scores.byteOffset, n);
  for (let k = 0; k < n; k++) {
    let b = bits[k]!;
    order[k] = k;
    if ((b & 0x7fffffff) > 0x7f800000) {
      keys[k] = 0xffffffff; // NaN: after every number
      continue;
    }
    if (b === 0x80000000) b = 0; // -0 ties with 0
    // Ascending order of the float as an unsigned key, then inverted for descending.
    const ascending = b & 0x80000000 ? ~b : b | 0x80000000;
    keys[k] = ~ascending >>> 0;
  }
  let nextKeys = new Uint32Array(n);
  let nextOrder = new Uint32Array(n);
  const counts = new Uint32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let k = 0; k < n; k++) counts[(keys[k]! >>> shift) & 0xff]!++;
    if (counts[(keys[0]! >>> shift) & 0xff] === n) continue;
    let sum = 0;
    for (let v = 0; v < 256; v++) {
      const c = counts[v]!;
      counts[v] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const at = counts[(keys[k]! >>> shift) & 0xff]!++;
      nextKeys[at] = keys[k]!;
      nextOrder[at] = order[k]!;
    }
    [keys, nextKeys] = [nextKeys, keys];
    [order, nextOrder] = [nextOrder, order];
  }
  return order;
}
