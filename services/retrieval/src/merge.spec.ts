import { common, type features } from '@recsys/contracts';
import { create } from '@bufbuild/protobuf';
import { acceptCandidates, blockedItems, fuseChannels, seenItems } from './merge.js';

const list = (...ids: string[]) => ids.map((itemId, k) => ({ itemId, score: 10 - k }));

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

describe('acceptCandidates', () => {
  it('drops blocked and repeated items, then keeps the first quota in order', () => {
    const accepted = acceptCandidates(list('a', 'b', 'a', 'c', 'd', 'e'), new Set(['b', 'd']), 3);
    expect(accepted.map((c) => c.itemId)).toEqual(['a', 'c', 'e']);
    expect(accepted.map((c) => c.score)).toEqual([10, 7, 5]);
  });

  it('keeps nothing for a quota of 0 and fewer when too few remain', () => {
    expect(acceptCandidates(list('a', 'b'), new Set(), 0)).toEqual([]);
    expect(acceptCandidates(list('a', 'b'), new Set(['a']), 5).map((c) => c.itemId)).toEqual(['b']);
  });
});

describe('fuseChannels', () => {
  it('sums reciprocal ranks, keeps every channel and its own score for an item found twice', () => {
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
    expect(merged[0]).toEqual({
      itemId: 'b',
      score: 1 / 62 + 1 / 61,
      channels: ['two_tower', 'popular'],
      channelScores: { two_tower: 0.8, popular: 120 },
    });
    expect(merged[1]!.score).toBeCloseTo(1 / 61, 12);
    expect(merged[2]).toMatchObject({ channels: ['popular'], channelScores: { popular: 50 } });
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

  it('answers nothing for no lists or empty lists', () => {
    expect(fuseChannels([], 10, 60)).toEqual([]);
    expect(fuseChannels([{ channel: 'popular', candidates: [] }], 10, 60)).toEqual([]);
  });
});
