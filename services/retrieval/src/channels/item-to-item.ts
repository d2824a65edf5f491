import type { Neighbour, VectorStore } from '@recsys/vector-index';
import { categoryOf, type ChannelCandidate, channelCandidate, type SourceFilter } from './channel.js';

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
  const penalty = log(decay);
  const best = new Map<string, ChannelCandidate>();
  const add = (hits: readonly Neighbour[], age: number) => {
    for (const hit of hits) {
      const score = hit.score + age * penalty;
      const kept = best.get(hit.id);
      if (kept === undefined || score > kept.score) best.set(hit.id, channelCandidate(hit.id, score, categoryOf(hit)));
    }
  };
  const seedVectors = known.map((k) => vectors[k]!);
  if (store.scoreBound === undefined) {
    // One batch: the embedded index searches every seed in one multi-threaded call, Qdrant in one request.
    const lists = await store.searchBatch(seedVectors, quota, options);
    lists.forEach((hits, j) => add(hits, known[j]!));
  } else {
    // Newest seed first, one at a time: an older seed is searched only if its best possible (penalised) score could
    // still enter the top `quota` — with a tight catalogue the newest seed's neighbours usually fill it, and the
    // answer is the same as searching every seed.
    for (let j = 0; j < known.length; j++) {
      const age = known[j]!;
      if (best.size >= quota && store.scoreBound(seedVectors[j]!) + age * penalty <= cutScore(best, quota)) continue;
      // By id where the store can answer a seed's neighbours from its cache (the most viewed items are most seeds).
      add(await (store.similar ? store.similar(unique[age]!, quota, options) : store.search(seedVectors[j]!, quota, options)), age);
    }
  }
  // Map order is first-seen order (newest seed, best hit first): the stable sort keeps it for equal scores.
  return [...best.values()].sort((a, b) => b.score - a.score).slice(0, quota);
}

/** The quota-th best score kept so far: a candidate must beat it to enter the answer (ties go to the earlier one). */
function cutScore(best: ReadonlyMap<string, ChannelCandidate>, quota: number): number {
  return [...best.values()].map((c) => c.score).sort((a, b) => b - a)[quota - 1]!;
}
