import type { common } from '@recsys/contracts';
import type { ChannelCandidate, ChannelName } from './channels/channel.js';

/** One channel's accepted candidates, best first. */
export interface ChannelList {
  channel: ChannelName;
  candidates: readonly ChannelCandidate[];
}

/** A merged candidate: its fused retrieval score and every channel that produced it. */
export interface MergedCandidate {
  itemId: string;
  score: number;
  /** In the order the lists were given (shared between candidates: not to be changed). */
  channels: readonly ChannelName[];
  /** The item's category, from the first channel that knew it. */
  category?: string;
}

/** The items a user has interacted with: the stored history and the request's context items. */
export function seenItems(history: readonly { itemId: string }[], context: common.UserContext | undefined): Set<string> {
  const seen = new Set<string>();
  for (const entry of history) seen.add(entry.itemId);
  for (const item of context?.recentItems ?? []) if (item.itemId !== '') seen.add(item.itemId);
  return seen;
}

/** Items no channel may return: the seen ones unless the request keeps them, and the filter's ids. */
export function blockedItems(seen: ReadonlySet<string>, includeSeen: boolean, filter: common.ItemFilter | undefined): Set<string> {
  const blocked = includeSeen ? new Set<string>() : new Set(seen);
  for (const id of filter?.excludeItemIds ?? []) blocked.add(id);
  return blocked;
}

/** A channel's answer cut to what it may contribute: blocked and repeated items dropped, then the first `quota`. */
export function acceptCandidates(candidates: readonly ChannelCandidate[], blocked: ReadonlySet<string>, quota: number): ChannelCandidate[] {
  const kept: ChannelCandidate[] = [];
  const taken = new Set<string>();
  for (const candidate of candidates) {
    if (kept.length >= quota) break;
    if (blocked.has(candidate.itemId) || taken.has(candidate.itemId)) continue;
    taken.add(candidate.itemId);
    kept.push(candidate);
  }
  return kept;
}

/**
 * Reciprocal-rank fusion: channel scores live on different scales (cosine similarity, decayed event counts), so
 * each channel contributes 1 / (k + rank) for the rank it gave an item (1 for its best) and an item found by
 * several channels sums them. The fused score orders the answer; equal scores keep the interleaved order
 * (every channel's first item, in the order the lists are given, then every channel's second, ...).
 */
export function fuseChannels(lists: readonly ChannelList[], limit: number, k: number): MergedCandidate[] {
  // Per item (by first appearance, which is the interleaved order): its id, fused score, the lists that found it (a bit
  // each) and its category. One Map entry per item and plain arrays: this runs over ~1,000 candidates per request, and
  // three objects per item (an entry, its channels, each channel's score) were most of the merge's cost.
  const position = new Map<string, number>();
  const ids: string[] = [];
  const scores: number[] = [];
  const found: number[] = [];
  const categories: (string | undefined)[] = [];
  // A channel counts once per item, should two lists name the same channel (its first list's bit).
  const bits = lists.map((l) => 1 << lists.findIndex((other) => other.channel === l.channel));
  const depth = Math.max(0, ...lists.map((l) => l.candidates.length));
  for (let rank = 0; rank < depth; rank++) {
    const share = 1 / (k + rank + 1);
    for (let j = 0; j < lists.length; j++) {
      const candidate = lists[j]!.candidates[rank];
      if (candidate === undefined) continue;
      let at = position.get(candidate.itemId);
      if (at === undefined) {
        at = ids.length;
        position.set(candidate.itemId, at);
        ids.push(candidate.itemId);
        scores.push(0);
        found.push(0);
        categories.push(undefined);
      }
      if (categories[at] === undefined && candidate.category !== undefined) categories[at] = candidate.category;
      const bit = bits[j]!;
      if ((found[at]! & bit) !== 0) continue;
      scores[at] += share;
      found[at] |= bit;
    }
  }
  // Best fused score first; equal scores keep the interleaved order (Array#sort is stable).
  const order = ids.map((_, at) => at).sort((a, b) => scores[b]! - scores[a]!);
  const channelsOf = new Map<number, ChannelName[]>();
  const out: MergedCandidate[] = [];
  for (let n = 0; n < order.length && n < limit; n++) {
    const at = order[n]!;
    const mask = found[at]!;
    let channels = channelsOf.get(mask);
    // Channels listed in the lists' order, whichever found the item first.
    if (channels === undefined)
      channelsOf.set(mask, (channels = lists.filter((_, j) => (mask & bits[j]!) !== 0 && bits[j] === 1 << j).map((l) => l.channel)));
    const category = categories[at];
    out.push(
      category === undefined
        ? { itemId: ids[at]!, score: scores[at]!, channels }
        : { itemId: ids[at]!, score: scores[at]!, channels, category },
    );
  }
  return out;
}
