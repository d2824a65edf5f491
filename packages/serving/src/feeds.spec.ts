import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { create } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import {
  type CategoricalFeature,
  type ContinuousFeature,
  type Feature,
  type FeatureSpec,
  type MultiCategoricalFeature,
  encodeCategorical,
  encodeContinuous,
  encodeMulti,
  isIdFeature,
} from '@recsys/data';
import { type InputLayout, inputLayout, type Tensor } from '@recsys/model-format';
import { assembleFeeds, type BatchRows, concatFeeds, FeedAssembler, LARGE_VOCABULARY, servingLayout } from './feeds.js';
import {
  type FeatureRow,
  itemRow,
  recentItems,
  userRow,
  contextRow,
  type RawValue,
  historySlots,
  userHistoryItems,
} from './feature-rows.js';

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

describe('user history', () => {
  it('holds every recorded item (any event type) or the positives, context first, capped', () => {
    const context = create(common.UserContextSchema, { recentItems: [{ itemId: 'x', eventType: common.EventType.DISLIKE }] });
    const h = history(['y', common.EventType.IMPRESSION], ['z', common.EventType.LIKE], ['x', common.EventType.VIEW]);
    expect(userHistoryItems(context, h, 10, false)).toEqual(['x', 'y', 'z']);
    expect(userHistoryItems(context, h, 2, false)).toEqual(['x', 'y']);
    expect(userHistoryItems(context, h, 10, true)).toEqual(['z', 'x']);
    const row = contextRow(context, h, 10);
    expect(row.get('user_history')).toEqual(['z', 'x']);
    expect(row.get('user_history_all')).toEqual(['x', 'y', 'z']);
  });

  it('reads as many slots as the longest history input of a spec', () => {
    const multi = (column: string, maxValues: number): MultiCategoricalFeature => ({
      kind: 'multi',
      name: column,
      source: 'context',
      column,
      vocabulary: ['<unk>'],
      unknown: 0,
      maxValues,
    });
    expect(historySlots({ features: [multi('recent_items', 10), multi('user_history', 100)] })).toBe(100);
    expect(historySlots({ features: [multi('tags', 30)] })).toBe(0);
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

/** The plain per-row encoding with @recsys/data's functions, feature by feature: what the assembler must equal. */
function referenceFeeds(layout: InputLayout, rows: BatchRows): Record<string, Tensor> {
  const batch = [...layout.categorical, ...layout.multi, ...layout.continuous].some((f) => f.source === 'item') ? rows.items!.length : 1;
  const row = (f: Feature, k: number): FeatureRow => (f.source === 'item' ? rows.items![k]! : rows[f.source]!);
  const raw = (f: Feature, k: number): RawValue => (isIdFeature(f) ? row(f, k).id : row(f, k).get(f.column));
  const text = (v: RawValue) =>
    v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : (v[0] ?? '');
  const list = (v: RawValue): readonly string[] =>
    v === undefined
      ? []
      : typeof v === 'string'
        ? v === ''
          ? []
          : [v]
        : typeof v === 'number'
          ? Number.isFinite(v)
            ? [String(v)]
            : []
          : v;
  const number = (v: RawValue) => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);
  const feeds: Record<string, Tensor> = {};
  const C = layout.categorical.length;
  const categorical = new Int32Array(batch * C);
  layout.categorical.forEach((f, c) => {
    for (let k = 0; k < batch; k++) categorical[k * C + c] = encodeCategorical(f, text(raw(f, k)));
  });
  if (C) feeds.categorical = { data: categorical, shape: [batch, C] };
  for (const f of layout.multi) {
    const L = f.maxValues;
    const codes = new Int32Array(batch * L);
    const weights = new Float32Array(batch * L);
    for (let k = 0; k < batch; k++) {
      const n = encodeMulti(f, list(raw(f, k)), codes, k * L);
      for (let j = 0; j < n; j++) weights[k * L + j] = 1 / n;
    }
    feeds[`multi_${f.name}`] = { data: codes, shape: [batch, L] };
    feeds[`multi_${f.name}_weights`] = { data: weights, shape: [batch, L] };
  }
  const D = layout.continuous.length;
  const continuous = new Float32Array(batch * D);
  layout.continuous.forEach((f, d) => {
    for (let k = 0; k < batch; k++) continuous[k * D + d] = encodeContinuous(f, number(raw(f, k)));
  });
  if (D) feeds.continuous = { data: continuous, shape: [batch, D] };
  return feeds;
}

describe('FeedAssembler', () => {
  // A vocabulary with a repeated value (the first position wins) and the empty string, hashed features, every kind and source.
  const vocabulary = ['<unk>', 'a', 'b', 'a', 'c', ''];
  const layout: InputLayout = {
    categorical: [
      { kind: 'categorical', name: 'item_id', source: 'item', column: 'item_id', hashBuckets: 11, unknown: 0 },
      { kind: 'categorical', name: 'segment', source: 'user', column: 'segment', vocabulary, unknown: 0 },
      { kind: 'categorical', name: 'label', source: 'item', column: 'label', vocabulary, unknown: 0 },
      { kind: 'categorical', name: 'device', source: 'context', column: 'device', hashBuckets: 5, unknown: 1 },
      { kind: 'categorical', name: 'user_id', source: 'user', column: 'user_id', vocabulary: ['<unk>', 'u1', 'u2'], unknown: 0 },
    ],
    multi: [
      { kind: 'multi', name: 'tags', source: 'item', column: 'tags', vocabulary, unknown: 0, maxValues: 2 },
      { kind: 'multi', name: 'recent_items', source: 'context', column: 'recent_items', hashBuckets: 13, unknown: 0, maxValues: 3 },
      { kind: 'multi', name: 'hashed_tags', source: 'item', column: 'tags', hashBuckets: 7, unknown: 0, maxValues: 4 },
    ],
    continuous: [
      { kind: 'continuous', name: 'price', source: 'item', column: 'price', transform: 'log1p', mean: 1, std: 2, missing: 0.5 },
      { kind: 'continuous', name: 'age', source: 'user', column: 'age', transform: 'identity', mean: 30, std: 10, missing: 30 },
      { kind: 'continuous', name: 'rank', source: 'item', column: 'rank', transform: 'identity', mean: 0.1, std: 3, missing: -1 },
    ],
  };
  const values = (entries: Record<string, RawValue>): FeatureRow & { id: string } => ({ id: '', get: (column) => entries[column] });
  const item = (id: string, entries: Record<string, RawValue>) => ({ ...values(entries), id });
  const items = [
    item('i1', { label: 'a', tags: ['c', 'a', 'b'], price: 3, rank: '2.5' }),
    item('i2', { label: '', tags: 'b', price: Number.NaN, rank: 'x' }),
    item('i3', { label: 4, tags: [], price: -0.5 }),
    item('i4', { label: ['c', 'a'], tags: 7, price: Number.POSITIVE_INFINITY, rank: 1e-9 }),
    item('', {}),
    item('i6', { label: 'zz', tags: ['', 'zz', 'a', 'a', 'b'], price: 1e12, rank: -7 }),
  ];
  const shared = {
    user: { ...values({ segment: 'c', age: 41 }), id: 'u2' },
    context: values({ device: 'ios', recent_items: ['i1', 'i9'] }),
  };

  it('equals the plain encoding, feature by feature, for every kind, source and odd value', () => {
    const rows = { ...shared, items };
    const expected = referenceFeeds(layout, rows);
    const assembled = assembleFeeds(layout, rows);
    expect(Object.keys(assembled).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, tensor] of Object.entries(expected)) {
      expect({ name, shape: assembled[name]!.shape, data: Array.from(assembled[name]!.data) }).toEqual({
        name,
        shape: tensor.shape,
        data: Array.from(tensor.data),
      });
    }
    // The same from items encoded once (as cached) and assembled in another order.
    const assembler = FeedAssembler.of(layout);
    const encoded = items.map((row) => assembler.encodeItem(row));
    const reversed = assembler.assemble(shared, assembler.batchOf([...encoded].reverse()));
    const expectedReversed = referenceFeeds(layout, { ...shared, items: [...items].reverse() });
    for (const [name, tensor] of Object.entries(expectedReversed))
      expect(Array.from(reversed[name]!.data)).toEqual(Array.from(tensor.data));
    expect(assembler.itemColumns.names).toEqual(['label', 'tags', 'price', 'rank']);
    // The same again from records as an item table keeps them (codes and float32 values behind two words of the row's
    // creation time, one word of padding after), copied record by record, in the reversed order.
    const { codeWidth: cw, valueWidth: vw } = assembler;
    const stride = 2 + cw + vw + 1;
    const records = new ArrayBuffer(encoded.length * stride * 4);
    const words = new Int32Array(records);
    const floats = new Float32Array(records);
    encoded.forEach((item, row) => {
      for (let j = 0; j < cw; j++) words[row * stride + 2 + j] = item[j]!;
      for (let j = 0; j < vw; j++) floats[row * stride + 2 + cw + j] = item[cw + j]!;
    });
    const fromRows = assembler.newBatch(encoded.length);
    for (let k = 0; k < encoded.length; k++) {
      const base = (encoded.length - 1 - k) * stride;
      fromRows.setRecord(k, words, floats, base + 2, base + 2 + cw);
    }
    const fromTable = assembler.assemble(shared, fromRows);
    for (const [name, tensor] of Object.entries(expectedReversed))
      expect(Array.from(fromTable[name]!.data)).toEqual(Array.from(tensor.data));
  });

  it('encodes a vocabulary of LARGE_VOCABULARY values or more (an IdTable, not a Map) as the plain encoding does', () => {
    // Item ids as a history feature's vocabulary; one repeated (the first position wins), one non-ASCII.
    const ids = Array.from({ length: LARGE_VOCABULARY + 5 }, (_, k) => `item-${k}`);
    const big = ['<unk>', ...ids, 'item-7', 'ítem-ü'];
    const feature = {
      kind: 'multi',
      name: 'recent_items',
      source: 'context',
      column: 'recent',
      vocabulary: big,
      unknown: 0,
      maxValues: 6,
    } as const;
    const bigLayout: InputLayout = { categorical: [], multi: [feature], continuous: [] };
    const asked = ['item-7', 'ítem-ü', 'nope', '', `item-${LARGE_VOCABULARY + 4}`, 'item-0'];
    const rows = { user: { ...values({}), id: 'u1' }, context: values({ recent: asked }), items: [] };
    const assembled = assembleFeeds(bigLayout, rows);
    const expected = referenceFeeds(bigLayout, rows);
    for (const [name, tensor] of Object.entries(expected)) expect(Array.from(assembled[name]!.data)).toEqual(Array.from(tensor.data));
    // Positions in `big`: item-7 first at 8, the non-ASCII id last, unknown and empty values 0.
    expect(Array.from(assembled.multi_recent_items!.data)).toEqual([8, LARGE_VOCABULARY + 7, 0, 0, LARGE_VOCABULARY + 5, 1]);
  });

  it('servingLayout drops large vocabularies from its features and encodes as the full layout does, for any prefix', () => {
    const ids = Array.from({ length: LARGE_VOCABULARY + 5 }, (_, k) => `item-${k}`);
    // One vocabulary shared by two features with different unknown indexes (as recent items and the history share the
    // item ids), a repeat (the first position wins), a small vocabulary kept as it is.
    const shared = ['<unk>', ...ids, 'item-7'];
    const spec: FeatureSpec = {
      features: [
        { kind: 'categorical', name: 'last_item', source: 'context', column: 'last', vocabulary: shared, unknown: 0 },
        { kind: 'categorical', name: 'country', source: 'user', column: 'country', vocabulary: ['<unk>', 'de', 'fr'], unknown: 0 },
        { kind: 'multi', name: 'recent_items', source: 'context', column: 'recent', vocabulary: shared, unknown: 3, maxValues: 5 },
      ],
    };
    const lean = servingLayout(spec);
    expect('vocabulary' in lean.categorical[0]!).toBe(false);
    expect('vocabulary' in lean.multi[0]!).toBe(false);
    expect(lean.categorical[1]!.vocabulary).toEqual(['<unk>', 'de', 'fr']);
    // Nothing else of the feature changes, and the spec itself is left whole.
    expect(lean.multi[0]).toEqual({ kind: 'multi', name: 'recent_items', source: 'context', column: 'recent', unknown: 3, maxValues: 5 });
    expect(spec.features[2]!.kind === 'multi' && spec.features[2]!.vocabulary).toBe(shared);
    const full = inputLayout(spec);
    const asked = ['item-7', 'nope', '', `item-${LARGE_VOCABULARY + 4}`, 'item-0'];
    const rows = { user: { ...values({ country: 'fr' }), id: 'u1' }, context: values({ recent: asked, last: 'nope' }), items: [] };
    for (const prefix of ['', 'user_']) {
      const assembled = assembleFeeds(lean, rows, prefix);
      const expected = referenceFeeds(full, rows);
      for (const [name, tensor] of Object.entries(expected)) {
        expect(Array.from(assembled[`${prefix}${name}`]!.data)).toEqual(Array.from(tensor.data));
      }
    }
    // Unknown values take each feature's own unknown index: 0 for last_item, 3 for recent_items.
    expect(Array.from(assembleFeeds(lean, rows).categorical!.data)).toEqual([0, 2]);
    expect(Array.from(assembleFeeds(lean, rows).multi_recent_items!.data)).toEqual([8, 3, 3, LARGE_VOCABULARY + 5, 1]);
  });

  it('servingLayout encodes equal vocabularies read as separate arrays (a manifest from JSON) with their own unknowns', () => {
    const ids = ['<unk>', ...Array.from({ length: LARGE_VOCABULARY }, (_, k) => `item-${k}`)];
    const spec = JSON.parse(
      JSON.stringify({
        features: [
          { kind: 'multi', name: 'recent_items', source: 'context', column: 'recent', vocabulary: ids, unknown: 0, maxValues: 3 },
          { kind: 'multi', name: 'user_history', source: 'context', column: 'history', vocabulary: ids, unknown: 2, maxValues: 3 },
        ],
      }),
    ) as FeatureSpec;
    const rows = { context: values({ recent: ['item-4', 'nope'], history: ['nope', `item-${LARGE_VOCABULARY - 1}`] }) };
    const lean = assembleFeeds(servingLayout(spec), rows);
    const full = referenceFeeds(inputLayout(spec), rows);
    for (const [name, tensor] of Object.entries(full)) expect(Array.from(lean[name]!.data)).toEqual(Array.from(tensor.data));
    expect(Array.from(lean.multi_user_history!.data)).toEqual([2, LARGE_VOCABULARY, 0]);
  });

  it("servingLayout's encoders keep no reference to the dropped vocabulary (it is collected)", async () => {
    // node's gc, without starting jest with --expose-gc.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const made = () => {
      const vocabulary = ['<unk>', ...Array.from({ length: LARGE_VOCABULARY }, (_, k) => `item-${k}`)];
      const spec: FeatureSpec = {
        features: [
          { kind: 'multi', name: 'recent_items', source: 'context', column: 'recent', vocabulary, unknown: 0, maxValues: 3 },
          { kind: 'categorical', name: 'last_item', source: 'context', column: 'last', vocabulary, unknown: 0 },
        ],
      };
      const lean = servingLayout(spec);
      // Compiled for two prefixes, as the user tower's own and a second model's would be.
      FeedAssembler.of(lean, 'user_');
      FeedAssembler.of(lean);
      return { lean, dropped: new WeakRef(vocabulary) };
    };
    const { lean, dropped } = made();
    // A WeakRef's target lives to the end of the job that made it.
    await new Promise((done) => setImmediate(done));
    gc();
    expect(dropped.deref()).toBeUndefined();
    const rows = { context: values({ recent: ['item-4', 'nope'], last: 'item-9' }) };
    expect(Array.from(assembleFeeds(lean, rows).multi_recent_items!.data)).toEqual([5, 0, 0]);
    expect(Array.from(assembleFeeds(lean, rows, 'user_').user_categorical!.data)).toEqual([10]);
  });

  it('gives a batch of one to a layout without item features, and names a missing shared row', () => {
    const userOnly: InputLayout = { categorical: [layout.categorical[1]!], multi: [], continuous: [layout.continuous[1]!] };
    const feeds = assembleFeeds(userOnly, { user: shared.user, items });
    expect(feeds.categorical!.shape).toEqual([1, 1]);
    expect(Array.from(feeds.categorical!.data)).toEqual([4]); // 'c'
    expect(FeedAssembler.of(userOnly).readsItems).toBe(false);
    expect(() => assembleFeeds(layout, { context: shared.context, items })).toThrow('assembleFeeds: a user feature needs a user row');
  });
});
