import type { common } from '@recsys/contracts';
import type { ChannelCandidate, ChannelName } from './channels/channel.js';

/** One channel's accepted candidates, best first. */
export interface ChannelList {
  channel: ChannelName;
  candidates: readonly ChannelCandidate[];
}

/** A merged candidate: its fused retrieval score, every channel that produced it and each channel's own score. */
export interface MergedCandidate {
  itemId: string;
  score: number;
  channels: ChannelName[];
  channelScores: Partial<Record<ChannelName, number>>;
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
  const merged = new Map<string, MergedCandidate>();
  const depth = Math.max(0, ...lists.map((l) => l.candidates.length));
  for (let rank = 0; rank < depth; rank++) {
    for (const { channel, candidates } of lists) {
      const candidate = candidates[rank];
      if (!candidate) continue;
      let entry = merged.get(candidate.itemId);
      if (!entry) {
        entry = { itemId: candidate.itemId, score: 0, channels: [], channelScores: {} };
        merged.set(candidate.itemId, entry);
      }
      if (entry.category === undefined && candidate.category !== undefined) entry.category = candidate.category;
      if (entry.channelScores[channel] !== undefined) continue;
      entry.score += 1 / (k + rank + 1);
      entry.channels.push(channel);
      entry.channelScores[channel] = candidate.score;
    }
  }
  // Channels listed in the lists' order, whichever found the item first.
  const order = new Map(lists.map((l, k) => [l.channel, k]));
  const out = [...merged.values()].sort((a, b) => b.score - a.score).slice(0, limit);
  for (const entry of out) entry.channels.sort((a, b) => order.get(a)! - order.get(b)!);
  return out;
}
