import type { common, features } from '@recsys/contracts';
import { type PassedUser, passedUserAnswer } from './passed-user.js';
import { type FeatureRow, contextRow, itemRow, userRow } from '@recsys/serving';

/** The feature-service calls serving needs; the typed gRPC client satisfies it. */
export interface FeatureReader {
  getUserFeatures(request: { userId: string; historyLimit?: number }): Promise<features.GetUserFeaturesResponse>;
  batchGetItemFeatures(request: { itemIds: string[] }): Promise<features.BatchGetItemFeaturesResponse>;
}

/** What a request knows of its user: stored features (none for an unknown user), history and context. */
export interface UserState {
  found: boolean;
  user: FeatureRow;
  context: FeatureRow;
  /** Most recent first. */
  history: features.HistoryEntry[];
}

/**
 * Reads the user's features and history in one call and joins them with the request context; a request that
 * carries the user deep enough (`passed`) makes no call.
 */
export async function readUserState(
  reader: FeatureReader,
  userId: string,
  context: common.UserContext | undefined,
  historyLength: number,
  historyLimit = historyLength,
  passed?: PassedUser,
): Promise<UserState> {
  const answer = passedUserAnswer(userId, passed, historyLimit) ?? (await reader.getUserFeatures({ userId, historyLimit }));
  return {
    found: answer.found,
    user: userRow(userId, answer.user),
    context: contextRow(context, answer.history, historyLength),
    history: answer.history,
  };
}

/** The state of a request whose feature lookup failed or was skipped: context only. */
export function contextOnlyState(userId: string, context: common.UserContext | undefined, historyLength: number): UserState {
  return { found: false, user: userRow(userId, undefined), context: contextRow(context, [], historyLength), history: [] };
}

/** Item rows in the order asked (one round trip); ids the service does not know get rows of defaults. */
export async function readItemRows(reader: FeatureReader, itemIds: string[]): Promise<{ rows: FeatureRow[]; missing: string[] }> {
  if (itemIds.length === 0) return { rows: [], missing: [] };
  const answer = await reader.batchGetItemFeatures({ itemIds });
  const rows = itemIds.map((id, k) => {
    const result = answer.items[k];
    return itemRow(id, result?.found ? result.item : undefined);
  });
  return { rows, missing: answer.missingIds };
}
