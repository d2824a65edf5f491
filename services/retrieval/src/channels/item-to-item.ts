import type { VectorStore } from '@recsys/vector-index';
import type { ChannelCandidate, SourceFilter } from './channel.js';

const { log } = Math;

/**
 * Neighbours of the user's recent items, newest seed first. An item near several seeds keeps its best
 * recency-adjusted similarity: similarity + k·ln(decay) for the k-th newest seed (k = 0 for the newest), so an
 * older seed's neighbour must be closer by ln(1/decay) per step to outrank a newer seed's. The additive
 * penalty keeps the order right for negative similarities too, which a multiplicative weight would flip.
 */
export async function itemToItemCandidates(
  store: VectorStore,
  seeds: readonly string[],
  quota: number,
  filter: SourceFilter,
  decay: number,
): Promise<ChannelCandidate[]> {
  // A history may repeat an item: its first (newest) position counts.
  const unique = [...new Set(seeds)];
  if (unique.length === 0 || quota === 0) return [];
  const vectors = await store.getVectors(unique);
  const excludeIds = new Set([...filter.blocked, ...unique]);
  const options = { excludeIds, includeCategories: filter.includeCategories, excludeCategories: filter.excludeCategories };
  const lists = await Promise.all(vectors.map((vector) => (vector ? store.search(vector, quota, options) : Promise.resolve([]))));
  const penalty = log(decay);
  const best = new Map<string, number>();
  lists.forEach((hits, k) => {
    for (const hit of hits) {
      const score = hit.score + k * penalty;
      const kept = best.get(hit.id);
      if (kept === undefined || score > kept) best.set(hit.id, score);
    }
  });
  // Map order is first-seen order (newest seed, best hit first): the stable sort keeps it for equal scores.
  return [...best]
    .map(([itemId, score]) => ({ itemId, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, quota);
}
