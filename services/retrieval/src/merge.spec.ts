import { common, type features } from '@recsys/contracts';
import { create } from '@bufbuild/protobuf';
import { Random } from '@recsys/data';
import type { ChannelName } from './channels/channel.js';
import type { ChannelCandidate } from './channels/channel.js';
import { blockedItems, type ChannelList, type MergedCandidates, mergeChannels, seenItems } from './merge.js';

const list = (...ids: string[]) => ids.map((itemId, k) => ({ itemId, score: 10 - k }));

/** The merge's columns as one object per candidate (a category only where one was given). */
const objects = (merged: MergedCandidates) =>
  merged.itemIds.map((itemId, r) => ({
    itemId,
    score: merged.scores[r]!,
    channels: merged.channels[r]!,
    ...(merged.categories[r] !== '' && { category: merged.categories[r]! }),
  }));

/** One list's cut: what it contributes, in order. */
const acceptCandidates = (candidates: ChannelCandidate[], blocked: Set<string>, quota: number) => {
  const { contributed, merged } = mergeChannels([{ channel: 'two_tower', candidates }], blocked, [quota], 1000, 60);
  expect(merged.itemIds.length).toBe(contributed[0]);
  return merged.itemIds;
};

/** The fusion of lists that need no cut (nothing blocked, no quota). */
const fuseChannels = (lists: ChannelList[], limit: number, k: number) =>
  objects(
    mergeChannels(
      lists,
      new Set(),
      lists.map(() => Infinity),
      limit,
      k,
    ).merged,
  );

describe('seenItems / blockedItems', () => {
  const history = [{ itemId: 'h1' }, { itemId: 'h2' }] as features.HistoryEntry[];
  const context = create(common.UserContextSchema, { recentItems: [{ itemId: 'c1' }, { itemId: '' }, { itemId: 'h1' }] });

  it('counts the history and the context items as seen', () => {
    expect([...seenItems(history, context)].sort()).toEqual(['c1', 'h1', 'h2']);
    expect([...seenItems([], undefined)]).toEqual([]);
  });

  it('blocks the seen items and the filter ids, or only the filter ids when seen items are kept', () => {
    const seen = seenItems(history, context);
    const filter = create(common.ItemFilterSchema, { excludeItemIds: ['x'] });
    expect([...blockedItems(seen, false, filter)].sort()).toEqual(['c1', 'h1', 'h2', 'x']);
    expect([...blockedItems(seen, true, filter)]).toEqual(['x']);
    expect([...blockedItems(seen, true, undefined)]).toEqual([]);
  });
});

describe('mergeChannels: the cut', () => {
  it('drops blocked and repeated items, then keeps the first quota in order', () => {
    expect(acceptCandidates(list('a', 'b', 'a', 'c', 'd', 'e'), new Set(['b', 'd']), 3)).toEqual(['a', 'c', 'e']);
  });

  it('keeps nothing for a quota of 0 and fewer when too few remain', () => {
    expect(acceptCandidates(list('a', 'b'), new Set(), 0)).toEqual([]);
    expect(acceptCandidates(list('a', 'b'), new Set(['a']), 5)).toEqual(['b']);
  });

  it('cuts each list on its own: an item another list took still counts in this one, and ranks are after the cut', () => {
    const { contributed, merged } = mergeChannels(
      [
        { channel: 'two_tower', candidates: list('a', 'x', 'b', 'a', 'c') },
        { channel: 'popular', candidates: list('b', 'x', 'b', 'a') },
      ],
      new Set(['x']),
      [2, 5],
      10,
      60,
    );
    expect(contributed).toEqual([2, 2]);
    // a: two_tower rank 1 and popular rank 2; b: two_tower rank 2 and popular rank 1 (interleaved first: a).
    expect(objects(merged)).toEqual([
      { itemId: 'a', score: 1 / 61 + 1 / 62, channels: ['two_tower', 'popular'] },
      { itemId: 'b', score: 1 / 62 + 1 / 61, channels: ['two_tower', 'popular'] },
    ]);
  });

  it('refuses quotas that do not match the lists, and more lists than it has bits for', () => {
    expect(() => mergeChannels([{ channel: 'popular', candidates: [] }], new Set(), [], 10, 60)).toThrow('0 quotas for 1 lists');
    const many = Array.from({ length: 31 }, () => ({ channel: 'popular' as const, candidates: [] }));
    expect(() =>
      mergeChannels(
        many,
        new Set(),
        many.map(() => 1),
        10,
        60,
      ),
    ).toThrow(RangeError);
  });
});

describe('mergeChannels: the fusion', () => {
  it('sums reciprocal ranks and keeps every channel for an item found twice', () => {
    const merged = fuseChannels(
      [
        {
          channel: 'two_tower',
          candidates: [
            { itemId: 'a', score: 0.9 },
            { itemId: 'b', score: 0.8 },
          ],
        },
        {
          channel: 'popular',
          candidates: [
            { itemId: 'b', score: 120 },
            { itemId: 'c', score: 50 },
          ],
        },
      ],
      10,
      60,
    );
    expect(merged.map((m) => m.itemId)).toEqual(['b', 'a', 'c']);
    expect(merged[0]).toEqual({ itemId: 'b', score: 1 / 62 + 1 / 61, channels: ['two_tower', 'popular'] });
    expect(merged[1]!.score).toBeCloseTo(1 / 61, 12);
    expect(merged[2]).toEqual({ itemId: 'c', score: 1 / 62, channels: ['popular'] });
  });

  it('counts a channel once per item, lists channels in the lists order, takes the first category given', () => {
    const merged = fuseChannels(
      [
        {
          channel: 'item_to_item',
          candidates: [
            { itemId: 'x', score: 1 },
            { itemId: 'y', score: 0.5 },
            { itemId: 'x', score: 0.2 },
          ],
        },
        {
          channel: 'two_tower',
          candidates: [
            { itemId: 'y', score: 0.9, category: 'books' },
            { itemId: 'x', score: 0.1, category: 'games' },
          ],
        },
        // The same channel again: it adds nothing to an item it already found.
        {
          channel: 'item_to_item',
          candidates: [
            { itemId: 'z', score: 3, category: 'toys' },
            { itemId: 'y', score: 2 },
          ],
        },
      ],
      10,
      60,
    );
    expect(merged).toEqual([
      { itemId: 'x', score: 1 / 61 + 1 / 62, channels: ['item_to_item', 'two_tower'], category: 'games' },
      { itemId: 'y', score: 1 / 62 + 1 / 61, channels: ['item_to_item', 'two_tower'], category: 'books' },
      { itemId: 'z', score: 1 / 61, channels: ['item_to_item'], category: 'toys' },
    ]);
  });

  it('orders equal scores by interleaving the channels, and cuts to the limit', () => {
    const merged = fuseChannels(
      [
        { channel: 'two_tower', candidates: list('t1', 't2', 't3') },
        { channel: 'popular', candidates: list('p1', 'p2') },
        { channel: 'item_to_item', candidates: list('i1') },
      ],
      5,
      60,
    );
    expect(merged.map((m) => m.itemId)).toEqual(['t1', 'p1', 'i1', 't2', 'p2']);
  });

  it('ignores scales: a channel with huge raw scores does not dominate', () => {
    const merged = fuseChannels(
      [
        { channel: 'popular', candidates: [{ itemId: 'p', score: 1e9 }] },
        { channel: 'two_tower', candidates: [{ itemId: 't', score: 0.1 }] },
      ],
      2,
      60,
    );
    expect(merged[0]!.score).toBe(merged[1]!.score);
  });

  it('equals the plain cut and reciprocal-rank fusion on random lists (repeats, blocked and shared items, categories, quotas, a repeated channel)', () => {
    // The first-written cut: a Set of the items taken per list, blocked and repeated items dropped, then the quota.
    const accept = (candidates: readonly ChannelCandidate[], blocked: ReadonlySet<string>, quota: number) => {
      const kept: ChannelCandidate[] = [];
      const taken = new Set<string>();
      for (const candidate of candidates) {
        if (kept.length >= quota) break;
        if (blocked.has(candidate.itemId) || taken.has(candidate.itemId)) continue;
        taken.add(candidate.itemId);
        kept.push(candidate);
      }
      return kept;
    };
    // The first-written fusion: an object per item, channels in the lists' order, the first category given.
    const reference = (lists: ChannelList[], limit: number, k: number) => {
      const merged = new Map<string, { itemId: string; score: number; channels: string[]; category?: string }>();
      const depth = Math.max(0, ...lists.map((l) => l.candidates.length));
      for (let rank = 0; rank < depth; rank++) {
        for (const { channel, candidates } of lists) {
          const candidate = candidates[rank];
          if (!candidate) continue;
          let entry = merged.get(candidate.itemId);
          if (!entry) merged.set(candidate.itemId, (entry = { itemId: candidate.itemId, score: 0, channels: [] }));
          if (entry.category === undefined && candidate.category !== undefined) entry.category = candidate.category;
          if (entry.channels.includes(channel)) continue;
          entry.score += 1 / (k + rank + 1);
          entry.channels.push(channel);
        }
      }
      const order = lists.map((l) => l.channel);
      const out = [...merged.values()].sort((a, b) => b.score - a.score).slice(0, limit);
      for (const entry of out) entry.channels.sort((a, b) => order.indexOf(a as ChannelName) - order.indexOf(b as ChannelName));
      return out;
    };
    const random = new Random(3);
    const names: ChannelName[] = ['two_tower', 'popular', 'item_to_item'];
    for (let trial = 0; trial < 300; trial++) {
      const lists: ChannelList[] = Array.from({ length: 1 + random.int(4) }, () => ({
        channel: names[random.int(3)]!,
        candidates: Array.from({ length: random.int(30) }, () => ({
          itemId: `i${random.int(25)}`,
          score: random.next(),
          ...(random.next() < 0.5 ? { category: `c${random.int(4)}` } : {}),
        })),
      }));
      const limit = random.int(40);
      const blocked = new Set(Array.from({ length: random.int(4) }, () => `i${random.int(25)}`));
      const quotas = lists.map(() => random.int(25));
      const cut = lists.map((l, j) => ({ channel: l.channel, candidates: accept(l.candidates, blocked, quotas[j]!) }));
      const { contributed, merged } = mergeChannels(lists, blocked, quotas, limit, 60);
      expect(contributed).toEqual(cut.map((l) => l.candidates.length));
      expect(objects(merged)).toEqual(reference(cut, limit, 60));
      // Uncut lists (no repeats within a list, nothing blocked, no quota) fuse as they are.
      const plain = lists.map((l) => ({ channel: l.channel, candidates: accept(l.candidates, new Set(), Infinity) }));
      expect(fuseChannels(plain, limit, 60)).toEqual(reference(plain, limit, 60));
    }
  });

  it('answers nothing for no lists or empty lists', () => {
    expect(fuseChannels([], 10, 60)).toEqual([]);
    expect(fuseChannels([{ channel: 'popular', candidates: [] }], 10, 60)).toEqual([]);
  });
});
