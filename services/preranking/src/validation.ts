import type { common } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';

export interface RequestLimits {
  defaultLimit: number;
  maxLimit: number;
  maxCandidates: number;
  maxIdLength: number;
}

/** Why an id is unacceptable (the feature service's own rule), or undefined when it is fine. */
function idProblem(id: string, maxLength: number): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (id.length > maxLength) return `must be at most ${maxLength} characters (got ${id.length})`;
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'must not contain control characters';
  return undefined;
}

/**
 * Checks user_id, the candidates (present, within the limit, ids valid and unique), limit and the
 * user embedding's values; returns the item ids and how many candidates to keep.
 */
export function checkPrerankRequest(
  request: { userId: string; candidates: readonly common.Candidate[]; limit: number; userEmbedding: readonly number[] },
  limits: RequestLimits,
): { itemIds: string[]; keep: number } {
  const userProblem = idProblem(request.userId, limits.maxIdLength);
  if (userProblem) throw new InvalidArgumentError('user_id', userProblem);
  const n = request.candidates.length;
  if (n === 0) throw new InvalidArgumentError('candidates', 'must not be empty');
  if (n > limits.maxCandidates) {
    throw new InvalidArgumentError('candidates', `at most ${limits.maxCandidates} per request (got ${n}); split the request`);
  }
  if (request.limit < 0 || request.limit > limits.maxLimit) {
    throw new InvalidArgumentError('limit', `must be between 0 and ${limits.maxLimit} (0 means ${limits.defaultLimit})`);
  }
  const embedding = request.userEmbedding;
  for (let d = 0; d < embedding.length; d++) {
    if (!Number.isFinite(embedding[d])) throw new InvalidArgumentError(`user_embedding[${d}]`, 'must be a finite number');
  }
  const itemIds = new Array<string>(n);
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = request.candidates[i]!.itemId;
    const problem = idProblem(id, limits.maxIdLength);
    if (problem) throw new InvalidArgumentError(`candidates[${i}].item_id`, problem);
    const first = seen.get(id);
    // A repeated item would be scored twice and kept twice; the caller's merge has a bug.
    if (first !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, `"${id}" repeats candidates[${first}]`);
    seen.set(id, i);
    itemIds[i] = id;
  }
  return { itemIds, keep: Math.min(request.limit === 0 ? limits.defaultLimit : request.limit, n) };
}
