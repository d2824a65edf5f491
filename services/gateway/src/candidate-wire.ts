import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  common,
  fieldNumber,
  preranking,
  ranking,
  reranking,
  retrieval,
  sharedFieldNumbers as sharedFields,
  WIRE,
} from '@recsys/contracts';
import { CandidateBounds, candidateItemId, CandidateList, copyRange, varintSize, WireReader, wireText } from '@recsys/service-kit';

// The candidate list as bytes (CandidateList, the reader) is service-kit's, shared with every stage; this module writes
// the gateway's stage requests and reads the stage answers with it.
export { CandidateList };

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
const { varint: VARINT, fixed32: FIXED32, length: LENGTH } = WIRE;

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
  const reader = new WireReader(bytes);
  // Re-ranking's answer (the final list, a few candidates) with its ids read here, as a malformed candidate fails the
  // stage's call; the others' (passed on as bytes, checked by the stage they go to) when first asked for.
  const ids: string[] | undefined = kind === 'rerank' ? [] : undefined;
  const bounds = new CandidateBounds();
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
      const end = reader.lengthEnd();
      bounds.add(reader.pos, end);
      if (ids !== undefined) ids.push(candidateItemId(bytes.subarray(reader.pos, end)));
      reader.pos = end;
    } else if (kind === 'retrieve' && field === ANSWER.retrieveEmbedding && wire === LENGTH) {
      const packed = new WireReader(reader.bytes());
      while (!packed.done) userEmbedding.push(packed.float());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveEmbedding && wire === FIXED32) {
      userEmbedding.push(reader.float());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveModelVersion && wire === LENGTH) {
      modelVersion = wireText(reader.bytes());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveIndexVersion && wire === LENGTH) {
      indexVersion = wireText(reader.bytes());
    } else if ((kind === 'prerank' || kind === 'rank') && field === ANSWER.modelVersion && wire === LENGTH) {
      modelVersion = wireText(reader.bytes());
    } else if (kind === 'rerank' && field === ANSWER.rerankRules && wire === LENGTH) {
      rules.push(reader.bytes());
    } else if (kind === 'retrieve' && field === ANSWER.retrieveChannels && wire === LENGTH) {
      channels.push(reader.bytes());
    } else {
      reader.skip(wire, field);
    }
  }
  return { candidates: CandidateList.inBuffer(bytes, bounds.finish(), ids), userEmbedding, modelVersion, indexVersion, rules, channels };
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

  /** A length-delimited field holding bytes[start, end) (all of them by default). */
  bytesField(field: number, bytes: Uint8Array, start = 0, end = bytes.length): void {
    const n = end - start;
    this.varint((field << 3) | LENGTH);
    this.varint(n);
    this.ensure(n);
    this.pos = copyRange(this.buf, this.pos, bytes, start, end);
  }

  /**
   * Every candidate of the list as a `field` of its own. A list that lies back to back in its buffer, each candidate
   * behind a one-byte tag and its length (a stage answer's candidates, or the first of them: the pre-ranking answer
   * cut to what ranking gets), is copied in one go and each tag rewritten; the bytes are the same as copying each
   * candidate behind a header of its own (a thousand loops of ~40 bytes per request).
   */
  candidateFields(field: number, list: CandidateList): void {
    const n = list.length;
    const tag = (field << 3) | LENGTH;
    const from = n > 0 && tag < 0x80 ? backToBackStart(list) : -1;
    if (from < 0) {
      for (let k = 0; k < n; k++) this.bytesField(field, list.buffer, list.start(k), list.end(k));
      return;
    }
    const end = list.end(n - 1);
    this.ensure(end - from);
    const base = this.pos - from;
    this.buf.set(list.buffer.subarray(from, end), this.pos);
    for (let k = 0; k < n; k++) this.buf[base + list.start(k) - 1 - varintSize(list.spanLength(k))] = tag;
    this.pos += end - from;
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

/**
 * Where the list's first candidate's header starts when every candidate lies right after the one before it, behind a
 * one-byte tag and its length as a minimal varint (the bytes between candidates are exactly such a header); else -1.
 */
function backToBackStart(list: CandidateList): number {
  const { buffer } = list;
  let at = list.start(0) - 1 - varintSize(list.spanLength(0));
  if (at < 0) return -1;
  const from = at;
  for (let k = 0; k < list.length; k++) {
    const start = list.start(k);
    let length = list.spanLength(k);
    if (start - 1 - varintSize(length) !== at) return -1;
    // The length as its varint bytes, compared byte by byte.
    for (let pos = at + 1; pos < start; pos++) {
      const byte = pos === start - 1 ? length : (length & 0x7f) | 0x80;
      if (buffer[pos] !== byte) return -1;
      length = Math.floor(length / 128);
    }
    at = list.end(k);
  }
  return from;
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
  const { candidates } = request;
  for (let k = 0; k < candidates.length; k++) size += candidates.spanLength(k) + 4;
  const writer = new Writer(size);
  writer.stringField(REQUEST.userId, request.userId);
  if (request.context !== undefined) writer.bytesField(REQUEST.context, request.context);
  writer.candidateFields(REQUEST.candidates, candidates);
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
