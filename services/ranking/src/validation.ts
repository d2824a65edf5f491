import type { common } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';

export interface RequestLimits {
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

/** Checks user_id, the candidates (present, within the limit, ids valid and unique) and limit; returns the item ids. */
export function checkCandidateRequest(
  request: { userId: string; candidates: readonly common.Candidate[]; limit: number },
  limits: RequestLimits,
): string[] {
  const userProblem = idProblem(request.userId, limits.maxIdLength);
  if (userProblem) throw new InvalidArgumentError('user_id', userProblem);
  const n = request.candidates.length;
  if (n === 0) throw new InvalidArgumentError('candidates', 'must not be empty');
  if (n > limits.maxCandidates) {
    throw new InvalidArgumentError('candidates', `at most ${limits.maxCandidates} per request (got ${n}); split the request`);
  }
  if (request.limit < 0) throw new InvalidArgumentError('limit', 'must be >= 0 (0 returns every candidate)');
  const ids = new Array<string>(n);
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = request.candidates[i]!.itemId;
    const problem = idProblem(id, limits.maxIdLength);
    if (problem) throw new InvalidArgumentError(`candidates[${i}].item_id`, problem);
    const first = seen.get(id);
    // A repeated item would be scored twice and shown twice; the caller's merge has a bug.
    if (first !== undefined) throw new InvalidArgumentError(`candidates[${i}].item_id`, `"${id}" repeats candidates[${first}]`);
    seen.set(id, i);
    ids[i] = id;
  }
  return ids;
}
