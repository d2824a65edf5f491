import { type CandidateIds, type CandidateList, checkCandidateIds, checkIdField, InvalidArgumentError } from '@recsys/service-kit';

export interface RequestLimits {
  defaultLimit: number;
  maxLimit: number;
  maxCandidates: number;
  maxIdLength: number;
}

/**
 * Checks user_id, the candidates (present, within the limit, ids valid and unique), limit and the
 * user embedding's values; returns the item ids and how many candidates to keep.
 */
export function checkPrerankRequest(
  request: { userId: string; limit: number; userEmbedding: readonly number[] },
  candidates: CandidateList,
  limits: RequestLimits,
): { itemIds: CandidateIds; keep: number } {
  checkIdField('user_id', request.userId, limits.maxIdLength);
  const itemIds = checkCandidateIds(candidates, limits);
  const n = itemIds.length;
  if (request.limit < 0 || request.limit > limits.maxLimit) {
    throw new InvalidArgumentError('limit', `must be between 0 and ${limits.maxLimit} (0 means ${limits.defaultLimit})`);
  }
  const embedding = request.userEmbedding;
  for (let d = 0; d < embedding.length; d++) {
    if (!Number.isFinite(embedding[d])) throw new InvalidArgumentError(`user_embedding[${d}]`, 'must be a finite number');
  }
  return { itemIds, keep: Math.min(request.limit === 0 ? limits.defaultLimit : request.limit, n) };
}
