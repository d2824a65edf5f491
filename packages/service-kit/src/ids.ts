import { InvalidArgumentError } from './errors.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

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
 * Checks a stage's candidate ids (as readCandidateRequest read them): present, at most maxCandidates, every item id valid and none repeated
 * (a repeated item would be scored and shown twice: the caller's merge has a bug). Returns the ids in order.
 */
export function checkCandidateIds(candidates: readonly string[], limits: { maxCandidates: number; maxIdLength: number }): string[] {
  const n = candidates.length;
  if (n === 0) throw new InvalidArgumentError('candidates', 'must not be empty');
  if (n > limits.maxCandidates) {
    throw new InvalidArgumentError('candidates', `at most ${limits.maxCandidates} per request (got ${n}); split the request`);
  }
  // One pass over each id's characters: whether it is printable ASCII within the length (nearly every id; idProblem
  // says what is wrong with any other) and its FNV-1a hash, for a table of the ids seen so far (their index + 1; 0:
  // empty; at most half full), kept between calls. A Map of them cost several times as much: it grows, and hashes and
  // stores each string.
  let size = 16;
  while (size < 2 * n) size <<= 1;
  if (seenSlots.length < size) seenSlots = new Int32Array(size);
  const slots = seenSlots;
  slots.fill(0, 0, size);
  const mask = size - 1;
  const maxLength = limits.maxIdLength;
  for (let i = 0; i < n; i++) {
    const id = candidates[i]!;
    let plain = id.length > 0 && id.length <= maxLength;
    let hash = 0x811c9dc5;
    for (let k = 0; k < id.length; k++) {
      const c = id.charCodeAt(k);
      if (c < 0x20 || c >= 0x7f) plain = false;
      hash = Math.imul(hash ^ c, 0x01000193);
    }
    // The field's name is written only for a refusal.
    const problem = plain ? undefined : idProblem(id, maxLength);
    if (problem !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, problem);
    let slot = hash & mask;
    for (let held = slots[slot]!; held !== 0; held = slots[slot]!) {
      if (candidates[held - 1] === id)
        throw new InvalidArgumentError(`candidates[${i}].item_id`, `"${id}" repeats candidates[${held - 1}]`);
      slot = (slot + 1) & mask;
    }
    slots[slot] = i + 1;
  }
  return candidates.slice();
}

/** checkCandidateIds' table of the ids seen, kept between calls (checks are synchronous): a check allocates nothing. */
let seenSlots = new Int32Array(0);
