import type { VectorStore } from '@recsys/vector-index';
import { categoryOf, type ChannelCandidate, channelCandidate, type SourceFilter } from './channel.js';

/** The items nearest to the user's embedding in the index (the two-tower's item vectors). */
export async function twoTowerCandidates(
  store: VectorStore,
  userVector: Float32Array,
  quota: number,
  filter: SourceFilter,
): Promise<ChannelCandidate[]> {
  const hits = await store.search(userVector, quota, {
    excludeIds: filter.blocked,
    includeCategories: filter.includeCategories,
    excludeCategories: filter.excludeCategories,
  });
  return hits.map((hit) => channelCandidate(hit.id, hit.score, categoryOf(hit)));
}
