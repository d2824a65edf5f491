import type { VectorStore } from '@recsys/vector-index';
import { categoryOf, type ChannelCandidate, type SourceFilter } from './channel.js';

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
  const known = unique.flatMap((_, k) => (vectors[k] ? [k] : []));
  if (known.length === 0) return [];
  const excludeIds = new Set([...filter.blocked, ...unique]);
  const options = { excludeIds, includeCategories: filter.includeCategories, excludeCategories: filter.excludeCategories };
  // One batch: the embedded index searches every seed in one multi-threaded call, Qdrant in one request.
  const lists = await store.searchBatch(
    known.map((k) => vectors[k]!),
    quota,
    options,
  );
  const penalty = log(decay);
  const best = new Map<string, ChannelCandidate>();
  lists.forEach((hits, j) => {
    const age = known[j]!;
    for (const hit of hits) {
      const score = hit.score + age * penalty;
      const kept = best.get(hit.id);
      if (kept === undefined || score > kept.score) best.set(hit.id, { itemId: hit.id, score, ...categoryOf(hit) });
    }
  });
  // Map order is first-seen order (newest seed, best hit first): the stable sort keeps it for equal scores.
  return [...best.values()].sort((a, b) => b.score - a.score).slice(0, quota);
}
