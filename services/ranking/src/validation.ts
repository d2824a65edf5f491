import { type CandidateIds, type CandidateList, checkCandidateIds, checkIdField, InvalidArgumentError } from '@recsys/service-kit';

export interface RequestLimits {
  maxCandidates: number;
  maxIdLength: number;
}

/** Checks user_id, the candidates (present, within the limit, ids valid and unique) and limit; returns the item ids. */
export function checkCandidateRequest(
  request: { userId: string; limit: number },
  candidates: CandidateList,
  limits: RequestLimits,
): CandidateIds {
  checkIdField('user_id', request.userId, limits.maxIdLength);
  const ids = checkCandidateIds(candidates, limits);
  if (request.limit < 0) throw new InvalidArgumentError('limit', 'must be >= 0 (0 returns every candidate)');
  return ids;
}
