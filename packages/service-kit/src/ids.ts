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
  const ids = new Array<string>(n);
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = candidates[i]!;
    // The field's name is written only for a refusal.
    const problem = idProblem(id, limits.maxIdLength);
    if (problem !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, problem);
    const first = seen.get(id);
    if (first !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, `"${id}" repeats candidates[${first}]`);
    seen.set(id, i);
    ids[i] = id;
  }
  return ids;
}
