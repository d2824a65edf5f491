import type { common } from '@recsys/contracts';
import type { ChannelCandidate, ChannelName } from './channels/channel.js';

/** One channel's answer, best first, as the channel gave it (blocked and repeated items are dropped by mergeChannels). */
export interface ChannelList {
  channel: ChannelName;
  candidates: readonly ChannelCandidate[];
}

/**
 * The fused candidates, best first, as columns (a thousand per answer: no object each): candidate r is itemIds[r] with
 * its fused retrieval score, every channel that produced it (in the order the lists were given; arrays shared between
 * candidates, not to be changed) and its category from the first channel that knew it ('' for none).
 */
export interface MergedCandidates {
  itemIds: string[];
  scores: number[];
  channels: (readonly ChannelName[])[];
  categories: string[];
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

/**
 * mergeChannels' per-entry arrays, kept between calls (a merge is synchronous): typed arrays of a few KB each are
 * memory outside the heap, allocated and freed per request otherwise.
 */
let scratch = { scores: new Float64Array(0), found: new Int32Array(0) };

/** Lists one merge takes at most (a bit each). */
const MAX_LISTS = 30;

/**
 * Every channel's answer cut to what it may contribute (blocked and repeated items dropped, then its first
 * `quotas[j]`), then the cuts fused by reciprocal rank: channel scores live on different scales (cosine similarity,
 * decayed event counts), so each channel contributes 1 / (k + rank) for the rank it gave an item among what it
 * contributes (1 for its best) and an item found by several channels sums them. The fused score orders the answer;
 * equal scores keep the interleaved order (every channel's first item, in the order the lists are given, then every
 * channel's second, ...). A channel named by two lists counts once per item (its first list's share). Returns how many
 * candidates each list contributed and the first `limit` fused ones.
 *
 * One pass over the answers finds each item's entry (one Map lookup per candidate, the acceptance's repeats told by a
 * bit per list), and the fusion runs over entry numbers: this runs over ~1,000 candidates per request, where a Set per
 * channel, a Map and an object per fused item were most of the merge's cost.
 */
export function mergeChannels(
  lists: readonly ChannelList[],
  blocked: ReadonlySet<string>,
  quotas: readonly number[],
  limit: number,
  k: number,
): { contributed: number[]; merged: MergedCandidates } {
  if (lists.length > MAX_LISTS) throw new RangeError(`at most ${MAX_LISTS} channel lists are merged (got ${lists.length})`);
  if (quotas.length !== lists.length) throw new RangeError(`${quotas.length} quotas for ${lists.length} lists`);
  // Entries by first sight in this pass: the id, and a bit per list that took the item.
  const entryOf = new Map<string, number>();
  const ids: string[] = [];
  const takenBy: number[] = [];
  // Each list's contribution in order: entry numbers and the category the channel gave.
  const taken: number[][] = [];
  const givenCategories: (string | undefined)[][] = [];
  for (let j = 0; j < lists.length; j++) {
    const quota = quotas[j]!;
    const entries: number[] = [];
    const categories: (string | undefined)[] = [];
    const bit = 1 << j;
    for (const candidate of lists[j]!.candidates) {
      if (entries.length >= quota) break;
      const id = candidate.itemId;
      if (blocked.has(id)) continue;
      let at = entryOf.get(id);
      if (at === undefined) {
        at = ids.length;
        entryOf.set(id, at);
        ids.push(id);
        takenBy.push(0);
      }
      if ((takenBy[at]! & bit) !== 0) continue;
      takenBy[at] = takenBy[at]! | bit;
      entries.push(at);
      categories.push(candidate.category);
    }
    taken.push(entries);
    givenCategories.push(categories);
  }

  // Reciprocal-rank fusion over the entries, in the interleaved order: each entry's score, the channels that found it (a
  // bit each: a channel counts once per item, should two lists name the same channel), its first category, and the
  // entries in order of first sight there (the order equal scores keep).
  const size = ids.length;
  if (scratch.scores.length < size) {
    const length = Math.max(size, 2 * scratch.scores.length);
    scratch = { scores: new Float64Array(length), found: new Int32Array(length) };
  }
  const { scores, found } = scratch;
  scores.fill(0, 0, size);
  found.fill(0, 0, size);
  const categories: (string | undefined)[] = new Array<string | undefined>(size);
  const interleaved: number[] = [];
  const bits = lists.map((l) => 1 << lists.findIndex((other) => other.channel === l.channel));
  const depth = Math.max(0, ...taken.map((entries) => entries.length));
  for (let rank = 0; rank < depth; rank++) {
    const share = 1 / (k + rank + 1);
    for (let j = 0; j < lists.length; j++) {
      const entries = taken[j]!;
      if (rank >= entries.length) continue;
      const at = entries[rank]!;
      // First sight: no channel has counted for it yet.
      if (found[at] === 0) interleaved.push(at);
      const category = givenCategories[j]![rank];
      if (categories[at] === undefined && category !== undefined) categories[at] = category;
      const bit = bits[j]!;
      if ((found[at]! & bit) !== 0) continue;
      scores[at] += share;
      found[at] = found[at]! | bit;
    }
  }
  // Best fused score first; equal scores keep the interleaved order (Array#sort is stable).
  const order = interleaved.sort((a, b) => scores[b]! - scores[a]!);
  const count = Math.max(0, Math.min(limit, order.length));
  const channelsOf = new Map<number, ChannelName[]>();
  const merged: MergedCandidates = {
    itemIds: new Array<string>(count),
    scores: new Array<number>(count),
    channels: new Array<readonly ChannelName[]>(count),
    categories: new Array<string>(count),
  };
  for (let n = 0; n < count; n++) {
    const at = order[n]!;
    const mask = found[at]!;
    let channels = channelsOf.get(mask);
    // Channels listed in the lists' order, whichever found the item first.
    if (channels === undefined)
      channelsOf.set(mask, (channels = lists.filter((_, j) => (mask & bits[j]!) !== 0 && bits[j] === 1 << j).map((l) => l.channel)));
    merged.itemIds[n] = ids[at]!;
    merged.scores[n] = scores[at]!;
    merged.channels[n] = channels;
    merged.categories[n] = categories[at] ?? '';
  }
  return { contributed: taken.map((entries) => entries.length), merged };
}
