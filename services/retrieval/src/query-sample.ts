import { UserTower, type ModelSessionOptions, type ModelVersion } from '@recsys/serving';
import { readUserState, type FeatureReader } from '@recsys/stage';

/** Users embedded for an index's query sample: enough for a dim × dim second moment, cheap to read (one call each). */
export const DEFAULT_QUERY_SAMPLE = 4096;

/** User-state reads in flight at once while sampling. */
const CONCURRENCY = 32;

export interface QuerySample {
  /** sampled × dim user embeddings, as the service computes them (stored features and history). */
  vectors: Float32Array;
  sampled: number;
  /** Sampled ids the feature service did not know (left out). */
  unknown: number;
}

/** The user ids the user tower was trained on: the vocabulary of its user_id feature, or none when it is hashed. */
export function trainedUserIds(model: ModelVersion): string[] {
  const feature = model.manifest.featureSpecs.user?.features.find((f) => f.kind === 'categorical' && f.source === 'user');
  if (feature?.kind !== 'categorical' || feature.vocabulary === undefined) return [];
  return feature.vocabulary.filter((_, code) => code !== feature.unknown);
}

/** `size` users spread evenly over `users` (all of them when there are no more). */
export function pickQueryUsers(users: readonly string[], size: number): string[] {
  if (users.length <= size) return [...users];
  return Array.from({ length: size }, (_, k) => users[Math.floor((k * users.length) / size)]!);
}

/**
 * What the retrieval service will search with: the user tower's embeddings of up to `size` users spread over the
 * trained users, each read from the feature service as a request without context would be. Undefined when the tower
 * names no users (a hashed user_id) or the feature service knows none of them.
 */
export async function sampleUserQueries(
  reader: FeatureReader,
  model: ModelVersion,
  size: number,
  towerOptions: Omit<ModelSessionOptions, 'label'> = {},
): Promise<QuerySample | undefined> {
  const users = trainedUserIds(model);
  if (users.length === 0 || size <= 0) return undefined;
  const picked = pickQueryUsers(users, size);
  const tower = await UserTower.load(model, towerOptions);
  try {
    const rows: Float32Array[] = [];
    let unknown = 0;
    for (let start = 0; start < picked.length; start += CONCURRENCY) {
      const states = await Promise.all(
        picked.slice(start, start + CONCURRENCY).map((userId) => readUserState(reader, userId, undefined, tower.historyLength)),
      );
      const known = states.filter((state) => state.found);
      unknown += states.length - known.length;
      if (known.length > 0) rows.push(await tower.embed(known.map((state) => ({ user: state.user, context: state.context }))));
    }
    const sampled = picked.length - unknown;
    if (sampled === 0) return undefined;
    const vectors = new Float32Array(sampled * tower.dim);
    let offset = 0;
    for (const row of rows) {
      vectors.set(row, offset);
      offset += row.length;
    }
    return { vectors, sampled, unknown };
  } finally {
    await tower.release();
  }
}
