import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  common,
  fieldNumber,
  fieldTag,
  preranking,
  ranking,
  reranking,
  retrieval,
  sharedFieldNumbers as sharedFields,
  WIRE,
} from '@recsys/contracts';

// The pre-ranking, ranking and re-ranking requests share one layout, written by writeStageRequest.
const REQUEST = {
  ...sharedFields(
    [preranking.PrerankRequestSchema, ranking.RankRequestSchema, reranking.RerankRequestSchema],
    ['userId', 'context', 'candidates', 'limit', 'userState', 'userHistoryLimit'],
  ),
  userEmbedding: fieldNumber(preranking.PrerankRequestSchema, 'userEmbedding'),
  embeddingModelVersion: fieldNumber(preranking.PrerankRequestSchema, 'embeddingModelVersion'),
};
const RETRIEVE_REQUEST = sharedFields([retrieval.RetrieveRequestSchema], ['userState', 'userHistoryLimit']);
// Every stage answer keeps its candidates in one field, read by readStageAnswer.
const ANSWER = {
  ...sharedFields(
    [retrieval.RetrieveResponseSchema, preranking.PrerankResponseSchema, ranking.RankResponseSchema, reranking.RerankResponseSchema],
    ['candidates'],
  ),
  retrieveEmbedding: fieldNumber(retrieval.RetrieveResponseSchema, 'userEmbedding'),
  retrieveModelVersion: fieldNumber(retrieval.RetrieveResponseSchema, 'modelVersion'),
  retrieveIndexVersion: fieldNumber(retrieval.RetrieveResponseSchema, 'indexVersion'),
  ...sharedFields([preranking.PrerankResponseSchema, ranking.RankResponseSchema], ['modelVersion']),
  retrieveChannels: fieldNumber(retrieval.RetrieveResponseSchema, 'channels'),
  rerankRules: fieldNumber(reranking.RerankResponseSchema, 'rules'),
};
const CANDIDATE_ITEM_ID = fieldNumber(common.CandidateSchema, 'itemId');
const ITEM_ID_TAG = fieldTag(common.CandidateSchema, 'itemId', WIRE.length);

const { varint: VARINT, fixed64: FIXED64, length: LENGTH, fixed32: FIXED32 } = WIRE;

/**
 * A stage's candidates kept as the protobuf bytes each arrived in, with their item ids: the gateway passes
 * them on to the next stage by copying bytes, and decodes whole candidates only for the answer's top k and
 * for debug. Decoding and re-encoding every candidate at every hop was a third of the gateway's CPU.
 */
export class CandidateList {
  constructor(
    readonly ids: readonly string[],
    readonly spans: readonly Uint8Array[],
  ) {}

  static readonly empty = new CandidateList([], []);

  static of(candidates: readonly common.Candidate[]): CandidateList {
    return new CandidateList(
      candidates.map((c) => c.itemId),
      candidates.map((c) => toBinary(common.CandidateSchema, c)),
    );
  }

  get length(): number {
    return this.ids.length;
  }

  slice(count: number): CandidateList {
    return count >= this.length ? this : new CandidateList(this.ids.slice(0, count), this.spans.slice(0, count));
  }

  decode(index: number): common.Candidate {
    return fromBinary(common.CandidateSchema, this.spans[index]!);
  }

  decodeAll(): common.Candidate[] {
    return this.spans.map((span) => fromBinary(common.CandidateSchema, span));
  }
}

/** Reads the fields of one message: tag, then a value the caller takes or skips. */
class Reader {
  pos = 0;
  private view: DataView | undefined;

  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new RangeError('truncated varint');
      const byte = this.buf[this.pos++]!;
      // Lengths and tags fit in 32 bits; higher bytes (negative int32s) only matter to skip.
      if (shift < 28) result |= (byte & 0x7f) << shift;
      else if (shift < 53) result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
  }

  bytes(): Uint8Array {
    const n = this.varint();
    const end = this.pos + n;
    if (end > this.buf.length) throw new RangeError('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  float(): number {
    if (this.pos + 4 > this.buf.length) throw new RangeError('truncated fixed32');
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const value = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return value;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === LENGTH) this.bytes();
    else if (wireType === FIXED32) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
    if (this.pos > this.buf.length) throw new RangeError('truncated field');
  }
}

const decoder = new TextDecoder();

/** A UTF-8 string from buf[start, end); short ASCII (every id here) without the native decoder. */
function text(buf: Uint8Array, start = 0, end = buf.length): string {
  if (end - start > 64) return decoder.decode(buf.subarray(start, end));
  let out = '';
  for (let k = start; k < end; k++) {
    const byte = buf[k]!;
    if (byte >= 0x80) return decoder.decode(buf.subarray(start, end));
    out += String.fromCharCode(byte);
  }
  return out;
}

/** The item id of one Candidate message: its first field as every writer here puts it, else found by scanning. */
function itemIdOf(span: Uint8Array): string {
  if (span.length >= 2 && span[0] === ITEM_ID_TAG && span[1]! < 0x80 && 2 + span[1]! <= span.length) return text(span, 2, 2 + span[1]!);
  const reader = new Reader(span);
  while (!reader.done) {
    const tag = reader.varint();
    if (tag >>> 3 === CANDIDATE_ITEM_ID && (tag & 7) === LENGTH) return text(reader.bytes());
    reader.skip(tag & 7);
  }
  return '';
}

export interface StageAnswer {
  candidates: CandidateList;
  /** RetrieveResponse only. */
  userEmbedding: number[];
  /** The model version the stage ran (retrieval: the two-tower's; pre-ranking, ranking: their own); '' for re-ranking. */
  modelVersion: string;
  /** RetrieveResponse only: the vector index version searched. */
  indexVersion: string;
  /** RerankResponse only: each RuleReport's bytes, decoded when asked. */
  rules: Uint8Array[];
  /** RetrieveResponse only: each ChannelReport's bytes. */
  channels: Uint8Array[];
}

export type StageAnswerKind = 'retrieve' | 'prerank' | 'rank' | 'rerank';

/** A stage's answer (RetrieveResponse, PrerankResponse, RankResponse or RerankResponse) read for what the gateway needs. */
export function readStageAnswer(bytes: Uint8Array, kind: StageAnswerKind): StageAnswer {
  const reader = new Reader(bytes);
  const ids: string[] = [];
  const spans: Uint8Array[] = [];
  const userEmbedding: number[] = [];
  let modelVersion = '';
  let indexVersion = '';
  const rules: Uint8Array[] = [];
  const channels: Uint8Array[] = [];
  while (!reader.done) {
    const tag = reader.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === ANSWER.candidates && wire === LENGTH) {
      const span = reader.bytes();
      spans.push(span);
      ids.push(itemIdOf(span));
    } else if (kind === 'retrieve' && field === ANSWER.retrieveEmbedding && wire === LENGTH) {
      const packed = new Reader(reader.bytes());
      while (!packed.done) userEmbedding.push(packed.float());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveEmbedding && wire === FIXED32) {
      userEmbedding.push(reader.float());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveModelVersion && wire === LENGTH) {
      modelVersion = text(reader.bytes());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveIndexVersion && wire === LENGTH) {
      indexVersion = text(reader.bytes());
    } else if ((kind === 'prerank' || kind === 'rank') && field === ANSWER.modelVersion && wire === LENGTH) {
      modelVersion = text(reader.bytes());
    } else if (kind === 'rerank' && field === ANSWER.rerankRules && wire === LENGTH) {
      rules.push(reader.bytes());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveChannels && wire === LENGTH) {
      channels.push(reader.bytes());
    } else {
      reader.skip(wire);
    }
  }
  return { candidates: new CandidateList(ids, spans), userEmbedding, modelVersion, indexVersion, rules, channels };
}

export const decodeRules = (rules: readonly Uint8Array[]): common.RuleReport[] => rules.map((r) => fromBinary(common.RuleReportSchema, r));

export const decodeChannels = (channels: readonly Uint8Array[]): retrieval.ChannelReport[] =>
  channels.map((c) => fromBinary(retrieval.ChannelReportSchema, c));

/** Grows as written; one per request. */
class Writer {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(expectedSize: number) {
    this.buf = new Uint8Array(Math.max(256, expectedSize));
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.varint((field << 3) | LENGTH);
    this.varint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** A proto3 int32, left out when 0; negative values are never written here (they would take ten bytes). */
  int32Field(field: number, value: number): void {
    if (value === 0) return;
    this.varint((field << 3) | VARINT);
    this.varint(Math.max(0, value));
  }

  stringField(field: number, value: string): void {
    if (value !== '') this.bytesField(field, Buffer.from(value, 'utf8'));
  }

  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.varint((field << 3) | LENGTH);
    this.varint(values.length * 4);
    this.ensure(values.length * 4);
    for (const v of values) {
      this.view.setFloat32(this.pos, v, true);
      this.pos += 4;
    }
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** The feature service's GetUserFeaturesResponse as it answered (bytes), read once and passed to every stage. */
export interface PassedUserBytes {
  state: Uint8Array;
  /** The history_limit it was read with. */
  historyLimit: number;
}

export interface StageRequest {
  userId: string;
  /** The user read once for the request; absent: each stage reads the user itself. */
  user?: PassedUserBytes;
  /** The request's UserContext, encoded once for every stage. */
  context: Uint8Array | undefined;
  candidates: CandidateList;
  limit: number;
  /** PrerankRequest only. */
  userEmbedding?: readonly number[];
  embeddingModelVersion?: string;
}

/** A PrerankRequest, RankRequest or RerankRequest, with the candidates copied as the bytes they came in. */
export function writeStageRequest(request: StageRequest): Uint8Array {
  let size = 64 + request.userId.length * 3 + (request.context?.length ?? 0) + (request.userEmbedding?.length ?? 0) * 4;
  size += (request.user?.state.length ?? 0) + 16;
  for (const span of request.candidates.spans) size += span.length + 4;
  const writer = new Writer(size);
  writer.stringField(REQUEST.userId, request.userId);
  if (request.context !== undefined) writer.bytesField(REQUEST.context, request.context);
  for (const span of request.candidates.spans) writer.bytesField(REQUEST.candidates, span);
  writer.int32Field(REQUEST.limit, request.limit);
  writer.packedFloats(REQUEST.userEmbedding, request.userEmbedding ?? []);
  writer.stringField(REQUEST.embeddingModelVersion, request.embeddingModelVersion ?? '');
  if (request.user !== undefined) writeUser(writer, request.user, REQUEST);
  return writer.finish();
}

function writeUser(writer: Writer, user: PassedUserBytes, fields: { userState: number; userHistoryLimit: number }): void {
  writer.bytesField(fields.userState, user.state);
  writer.int32Field(fields.userHistoryLimit, user.historyLimit);
}

/** An encoded RetrieveRequest with the user read once appended (a message's fields may come in any order). */
export function withPassedUser(retrieveRequest: Uint8Array, user: PassedUserBytes | undefined): Uint8Array {
  if (user === undefined) return retrieveRequest;
  const writer = new Writer(retrieveRequest.length + user.state.length + 16);
  writer.raw(retrieveRequest);
  writeUser(writer, user, RETRIEVE_REQUEST);
  return writer.finish();
}

/** The context's bytes for writeStageRequest; undefined when the request had none. */
export function encodeContext(context: common.UserContext | undefined): Uint8Array | undefined {
  return context === undefined ? undefined : toBinary(common.UserContextSchema, create(common.UserContextSchema, context));
}
