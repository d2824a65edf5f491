import { create } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import type { CategoricalFeature, ContinuousFeature, MultiCategoricalFeature } from '@recsys/data';
import { assembleFeeds, concatFeeds } from './feeds.js';
import { itemRow, recentItems, userRow, contextRow } from './feature-rows.js';

const history = (...ids: [string, common.EventType][]) =>
  ids.map(([itemId, eventType]) => create(features.HistoryEntrySchema, { itemId, eventType }));

describe('recentItems', () => {
  it('puts the context first, skips history items the context reported, keeps history repeats, caps the length', () => {
    const context = create(common.UserContextSchema, {
      recentItems: [{ itemId: 'c' }, { itemId: 'a', eventType: common.EventType.CLICK }],
    });
    const h = history(
      ['a', common.EventType.VIEW],
      ['b', common.EventType.VIEW],
      ['b', common.EventType.PURCHASE],
      ['d', common.EventType.VIEW],
    );
    expect(recentItems(context, h, 10)).toEqual(['c', 'a', 'b', 'b', 'd']);
    expect(recentItems(context, h, 3)).toEqual(['c', 'a', 'b']);
    expect(recentItems(undefined, [], 5)).toEqual([]);
  });

  it('never counts negative feedback or impressions', () => {
    const context = create(common.UserContextSchema, { recentItems: [{ itemId: 'x', eventType: common.EventType.DISLIKE }] });
    const h = history(['y', common.EventType.IMPRESSION], ['z', common.EventType.LIKE]);
    expect(recentItems(context, h, 10)).toEqual(['z']);
  });
});

describe('assembleFeeds', () => {
  const cat: CategoricalFeature = {
    kind: 'categorical',
    name: 'category',
    source: 'item',
    column: 'category',
    vocabulary: ['<unk>', 'a', 'b'],
    unknown: 0,
  };
  const uid: CategoricalFeature = { kind: 'categorical', name: 'user_id', source: 'user', column: 'user_id', hashBuckets: 7, unknown: 0 };
  const recent: MultiCategoricalFeature = {
    kind: 'multi',
    name: 'recent_items',
    source: 'context',
    column: 'recent_items',
    vocabulary: ['<unk>', 'i1', 'i2'],
    unknown: 0,
    maxValues: 3,
  };
  const price: ContinuousFeature = {
    kind: 'continuous',
    name: 'price',
    source: 'item',
    column: 'price',
    transform: 'log1p',
    mean: 1,
    std: 2,
    missing: 0.5,
  };
  const layout = { categorical: [uid, cat], multi: [recent], continuous: [price] };
  const num = (value: number) => ({ kind: { case: 'numeric' as const, value } });

  it('repeats shared rows, encodes items per row, uses the training missing value and unknown code', () => {
    const items = [
      itemRow('i1', create(features.ItemSchema, { itemId: 'i1', category: 'b', features: { values: { price: num(3) } } })),
      itemRow('i9', undefined),
    ];
    const context = contextRow(create(common.UserContextSchema, { recentItems: [{ itemId: 'i2' }, { itemId: 'zz' }] }), [], 3);
    const feeds = assembleFeeds(layout, { user: userRow('u1', undefined), context, items });
    const c = feeds.categorical!;
    expect(c.shape).toEqual([2, 2]);
    expect(c.data[0]).toBe(c.data[2]); // the user's code, shared
    expect([c.data[1], c.data[3]]).toEqual([2, 0]); // 'b', then missing → unknown
    expect(Array.from(feeds.multi_recent_items!.data)).toEqual([2, 0, 0, 2, 0, 0]); // 'zz' is unknown (0)
    expect(Array.from(feeds.multi_recent_items_weights!.data)).toEqual([0.5, 0.5, 0, 0.5, 0.5, 0]);
    const cont = feeds.continuous!.data;
    expect(cont[0]).toBeCloseTo((Math.log1p(3) - 1) / 2, 6);
    expect(cont[1]).toBeCloseTo((0.5 - 1) / 2, 6);
  });

  it('concatFeeds stacks batches along the first axis and reports offsets', () => {
    const a = assembleFeeds(layout, {
      user: userRow('u1', undefined),
      context: contextRow(undefined, [], 3),
      items: [itemRow('i1', undefined)],
    });
    const b = assembleFeeds(layout, {
      user: userRow('u2', undefined),
      context: contextRow(undefined, [], 3),
      items: [itemRow('i1', undefined), itemRow('i2', undefined)],
    });
    const { feeds, offsets } = concatFeeds([a, b]);
    expect(offsets).toEqual([0, 1]);
    expect(feeds.categorical!.shape).toEqual([3, 2]);
    expect(Array.from(feeds.categorical!.data)).toEqual([...a.categorical!.data, ...b.categorical!.data]);
  });
});
