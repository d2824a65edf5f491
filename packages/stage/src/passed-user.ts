import type { features } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';

/**
 * The user as every stage request may carry it (fields user_state and user_history_limit): read once by the
 * gateway, deep enough for every stage, and passed down so that no stage reads it again.
 */
export interface PassedUser {
  userState?: features.GetUserFeaturesResponse;
  userHistoryLimit: number;
}

/**
 * The passed-down feature answer when the request carries one read at least `historyLimit` entries deep, its
 * history cut to `historyLimit` (what a read of that depth answers); undefined when the stage must read the user
 * itself. A state of another user is refused (INVALID_ARGUMENT): it would serve one user with another's data.
 */
export function passedUserAnswer(
  userId: string,
  passed: PassedUser | undefined,
  historyLimit: number,
): features.GetUserFeaturesResponse | undefined {
  const state = passed?.userState;
  if (state === undefined) return undefined;
  const storedId = state.user?.userId ?? '';
  if (storedId !== '' && storedId !== userId) {
    throw new InvalidArgumentError('user_state.user.user_id', `must be the request's user_id "${userId}" (got "${storedId}")`);
  }
  if (passed!.userHistoryLimit < Math.max(1, historyLimit)) return undefined;
  return state.history.length > historyLimit ? { ...state, history: state.history.slice(0, historyLimit) } : state;
}
