import type { CandidateList } from './candidate-wire.js';
import { InvalidArgumentError } from './errors.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** FNV-1a's offset basis and prime (32-bit), as IdTable (@recsys/data) hashes ids. */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Why a user or item id is unacceptable, or undefined when it is fine: every stage applies the same rule. */
export function idProblem(id: string, maxLength: number): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (id.length > maxLength) return `must be at most ${maxLength} characters (got ${id.length})`;
  // Printable ASCII (nearly every id) passes without the expressions below: a thousand candidates are checked per call.
  let k = 0;
  while (k < id.length) {
    const c = id.charCodeAt(k);
    if (c < 0x20 || c >= 0x7f) break;
    k++;
  }
  if (k === id.length) return undefined;
  // Control characters would corrupt keys and logs; ids are opaque but printable.
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'must not contain control characters';
  // A lone surrogate (JSON's "\ud800") has no UTF-8 encoding: protobuf refuses it when the id is sent on.
  if (LONE_SURROGATE.test(id)) return 'must be valid Unicode (it holds a lone surrogate)';
  return undefined;
}

/** Throws INVALID_ARGUMENT naming `field` when the id is unacceptable. */
export function checkIdField(field: string, id: string, maxLength: number): void {
  const problem = idProblem(id, maxLength);
  if (problem) throw new InvalidArgumentError(field, problem);
}

/** The latest time a JavaScript Date holds (±8.64e15 ms, about 275,760 AD): a later one cannot be dated or printed. */
export const MAX_TIMESTAMP_MS = 8_640_000_000_000_000n;

/** What is wrong with `ms` as Unix milliseconds a Date holds (0 means unknown / now); undefined when nothing. */
export function timestampProblem(ms: bigint | number): string | undefined {
  const ok =
    typeof ms === 'bigint' ? ms >= 0n && ms <= MAX_TIMESTAMP_MS : Number.isSafeInteger(ms) && ms >= 0 && ms <= Number(MAX_TIMESTAMP_MS);
  return ok ? undefined : `must be Unix milliseconds from 0 to ${MAX_TIMESTAMP_MS} (0 means unknown / now)`;
}

/** Throws INVALID_ARGUMENT naming `field` unless `ms` is Unix milliseconds a Date holds (0 means unknown / now). */
export function checkTimestampField(field: string, ms: bigint): void {
  const problem = timestampProblem(ms);
  if (problem) throw new InvalidArgumentError(field, problem);
}

/**
 * A checked candidate list's item ids as byte ranges of its buffer (IdRanges of @recsys/data, which looks them up
 * without a string each), with each id's hash as an IdTable keeps it (FNV-1a over the id's UTF-16 code units, as a
 * signed 32-bit value: over its bytes for an ASCII id). Strings only on demand.
 */
export class CandidateIds {
  constructor(
    private readonly list: CandidateList,
    readonly hashes: Int32Array,
  ) {}

  get length(): number {
    return this.hashes.length;
  }

  /** The list's buffer, which holds the ids. */
  get bytes(): Uint8Array {
    return this.list.buffer;
  }

  /** Id k is bytes[bounds[2k], bounds[2k + 1]). */
  get bounds(): Int32Array {
    return this.list.idBounds;
  }

  id(k: number): string {
    return this.list.id(k);
  }
}

/**
 * Checks a stage's candidate ids (as readCandidateRequest read them): present, at most maxCandidates, every item id valid
 * and none repeated (a repeated item would be scored and shown twice: the caller's merge has a bug); the first refusal in
 * order, naming the candidate. Reads the ids from the list's bytes: no string per id but to refuse one (or for a rare
 * non-ASCII one).
 */
export function checkCandidateIds(candidates: CandidateList, limits: { maxCandidates: number; maxIdLength: number }): CandidateIds {
  const n = candidates.length;
  if (n === 0) throw new InvalidArgumentError('candidates', 'must not be empty');
  if (n > limits.maxCandidates) {
    throw new InvalidArgumentError('candidates', `at most ${limits.maxCandidates} per request (got ${n}); split the request`);
  }
  // One pass over each id's bytes: whether it is printable ASCII within the length (nearly every id; idProblem says what
  // is wrong with any other, from its string) and its FNV-1a hash, for a table of the ids seen so far (their index + 1;
  // 0: empty; at most half full), kept between calls. A Map of strings cost several times as much: it grows, and hashes
  // and stores each string.
  let size = 16;
  while (size < 2 * n) size <<= 1;
  if (seenSlots.length < size) seenSlots = new Int32Array(size);
  if (nonAscii.length < n) nonAscii = new Uint8Array(Math.max(n, 2 * nonAscii.length));
  const slots = seenSlots;
  slots.fill(0, 0, size);
  const mask = size - 1;
  const maxLength = limits.maxIdLength;
  const bytes = candidates.buffer;
  const bounds = candidates.idBounds;
  const hashes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const start = bounds[2 * i]!;
    const end = bounds[2 * i + 1]!;
    let plain = end > start && end - start <= maxLength;
    let hash = FNV_OFFSET;
    for (let k = start; k < end; k++) {
      const c = bytes[k]!;
      if (c < 0x20 || c >= 0x7f) plain = false;
      hash = Math.imul(hash ^ c, FNV_PRIME);
    }
    nonAscii[i] = 0;
    if (!plain) {
      // The field's name is written only for a refusal; a valid non-ASCII id is hashed over its string, as tables do.
      const id = candidates.id(i);
      const problem = idProblem(id, maxLength);
      if (problem !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, problem);
      hash = FNV_OFFSET;
      for (let k = 0; k < id.length; k++) hash = Math.imul(hash ^ id.charCodeAt(k), FNV_PRIME);
      nonAscii[i] = 1;
    }
    hashes[i] = hash;
    let slot = hash & mask;
    for (let held = slots[slot]!; held !== 0; held = slots[slot]!) {
      const j = held - 1;
      if (hashes[j] === hash && sameId(candidates, bytes, bounds, i, j)) {
        throw new InvalidArgumentError(`candidates[${i}].item_id`, `"${candidates.id(i)}" repeats candidates[${j}]`);
      }
      slot = (slot + 1) & mask;
    }
    slots[slot] = i + 1;
  }
  return new CandidateIds(candidates, hashes);
}

/**
 * Whether candidates i and j have the same item id: the same bytes, or (both not ASCII) bytes that decode to the same
 * string (a malformed UTF-8 sequence decodes to U+FFFD, as the string the stage would otherwise use).
 */
function sameId(candidates: CandidateList, bytes: Uint8Array, bounds: Int32Array, i: number, j: number): boolean {
  const a = bounds[2 * i]!;
  const b = bounds[2 * j]!;
  const length = bounds[2 * i + 1]! - a;
  if (length === bounds[2 * j + 1]! - b) {
    let k = 0;
    while (k < length && bytes[a + k] === bytes[b + k]) k++;
    if (k === length) return true;
  }
  return nonAscii[i] === 1 && nonAscii[j] === 1 && candidates.id(i) === candidates.id(j);
}

/** checkCandidateIds' table of the ids seen and which are not ASCII, kept between calls (checks are synchronous). */
let seenSlots = new Int32Array(0);
let nonAscii = new Uint8Array(0);
