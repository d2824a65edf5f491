import { protocolIsTrain, protocolIsValidation } from './hash.js';
import { userStateContext } from './history.js';
import { tableFromRows } from './table.js';
import { type TrainingSetup } from './types.js';
import { USER_HISTORY, USER_HISTORY_ALL, holdOutValidation, userHistoryColumn, validationMask, withUserHistory } from './user-history.js';

// Two users; rows out of time order in storage. Value 1 = positive.
const rows = [
  { u: 0, item: 2, v: 1, t: 5, split: 1 },
  { u: 0, item: 0, v: 1, t: 1, split: 1 },
  { u: 0, item: 1, v: 0, t: 3, split: 1 },
  { u: 0, item: 3, v: 1, t: 9, split: 0 }, // test: never in a history
  { u: 1, item: 1, v: 1, t: 2, split: 1 },
];

function setup(): TrainingSetup {
  const n = rows.length;
  const itemId = {
    kind: 'categorical' as const,
    name: 'item_id',
    source: 'item' as const,
    column: 'item_id',
    vocabulary: ['<unk>', 'i0', 'i1', 'i2', 'i3'],
    unknown: 0,
  };
  return {
    dataset: {
      name: 'h',
      users: tableFromRows(['u0', 'u1'], [{}, {}]),
      items: tableFromRows(['i0', 'i1', 'i2', 'i3'], [{}, {}, {}, {}]),
      interactions: {
        length: n,
        user: Int32Array.from(rows, (r) => r.u),
        item: Int32Array.from(rows, (r) => r.item),
        value: Float32Array.from(rows, (r) => r.v),
        timestamp: Float64Array.from(rows, (r) => r.t),
        context: {},
      },
      positiveThreshold: 1,
    },
    split: Uint8Array.from(rows, (r) => r.split),
    ranking: {
      features: [
        itemId,
        { kind: 'continuous', name: 'x', source: 'item', column: 'x', transform: 'identity', mean: 0, std: 1, missing: 0 },
      ],
    },
    userTower: { features: [] },
    itemTower: { features: [itemId] },
  };
}

describe('user history', () => {
  it("holds the user's fitted positives newest first, without the row's own item, and never a test row", () => {
    expect(userHistoryColumn(setup(), true, 10).values).toEqual([
      ['i0'], // row 0 (i2) drops itself
      ['i2'], // row 1 (i0) drops itself
      ['i2', 'i0'], // row 2 is a negative: not in the positives, its item not there either
      ['i2', 'i0'], // the test row sees the fitted history
      [], // user 1's only positive is the row itself
    ]);
  });

  it('with every fitted item for the ranking history, capped at the length after the target is removed', () => {
    expect(userHistoryColumn(setup(), false, 2).values).toEqual([
      ['i1', 'i0'], // fitted newest first: i2 (t5), i1 (t3), i0 (t1); i2 is the target
      ['i2', 'i1'],
      ['i2', 'i0'],
      ['i2', 'i1'],
      [],
    ]);
  });

  it('adds the columns and history features sharing the item id vocabulary', () => {
    const s = withUserHistory(setup(), { tower: 3, ranking: 2, rankingItems: 'all' });
    expect(s.userTower.features.map((f) => f.name)).toEqual([USER_HISTORY]);
    // Before the continuous features, as the other multi-valued ones.
    expect(s.ranking.features.map((f) => f.name)).toEqual(['item_id', USER_HISTORY_ALL, 'x']);
    const feature = s.ranking.features[1]!;
    expect(feature).toMatchObject({ kind: 'multi', source: 'context', maxValues: 2, vocabulary: ['<unk>', 'i0', 'i1', 'i2', 'i3'] });
    expect(s.dataset.interactions.context[USER_HISTORY]!.values[3]).toEqual(['i2', 'i0']);
    // Evaluation embeds users with their whole fitted history.
    expect(userStateContext(s, 10).columns[USER_HISTORY]!.values).toEqual([['i2', 'i0'], ['i1']]);
    expect(() => withUserHistory(setup(), { tower: -1, ranking: 0, rankingItems: 'all' })).toThrow(/tower length/);
  });
});

describe('validation slice', () => {
  it("follows PROTOCOL.md's rule for a hash split and never marks a test row", () => {
    const s = setup();
    const keys = { kind: 'hash' as const, userKey: (u: number) => u * 7 + 1, itemKey: (i: number) => i * 13 + 2 };
    const mask = validationMask({ ...s, splitRule: keys });
    rows.forEach((r, k) => expect(mask[k]).toBe(r.split === 1 && protocolIsValidation(keys.userKey(r.u), keys.itemKey(r.item)) ? 1 : 0));
    // About 10% of the train pairs over many keys.
    let train = 0;
    let val = 0;
    for (let u = 1; u < 300; u++)
      for (let i = 1; i < 300; i++)
        if (protocolIsTrain(u, i)) {
          train++;
          if (protocolIsValidation(u, i)) val++;
        }
    expect(val / train).toBeGreaterThan(0.08);
    expect(val / train).toBeLessThan(0.12);
  });

  it('holds out the latest train rows for a time split; the held-out setup marks test rows 2', () => {
    const s = { ...setup(), splitRule: { kind: 'time' as const } };
    // 4 train rows: 10% rounds to 0.
    expect(Array.from(validationMask(s))).toEqual([0, 0, 0, 0, 0]);
    // 20 train rows at times 0..19 (stored in reverse): the latest 2 are held out.
    const n = 20;
    const timed = {
      ...s,
      split: new Uint8Array(n).fill(1),
      dataset: {
        ...s.dataset,
        interactions: {
          ...s.dataset.interactions,
          length: n,
          user: new Int32Array(n),
          item: new Int32Array(n),
          value: new Float32Array(n).fill(1),
          timestamp: Float64Array.from({ length: n }, (_, r) => n - 1 - r),
        },
      },
    };
    expect(Array.from(validationMask(timed)).flatMap((v, r) => (v ? [r] : []))).toEqual([0, 1]);
    const many = { ...s, split: Uint8Array.of(1, 1, 1, 1, 1) };
    const wide = { ...many, dataset: { ...many.dataset } };
    const held = holdOutValidation({ ...wide, splitRule: { kind: 'hash', userKey: () => 0, itemKey: (i) => [0, 10, 11, 12][i]! } });
    // h = item key: (h div 10) mod 10 == 0 for item 0 (h 0) only.
    expect(Array.from(held.split)).toEqual([1, 0, 1, 1, 1]);
    const withTest = holdOutValidation({ ...s, splitRule: { kind: 'hash', userKey: () => 0, itemKey: (i) => [0, 10, 11, 12][i]! } });
    expect(Array.from(withTest.split)).toEqual([1, 0, 1, 2, 1]);
    // The history of a held-out setup holds only its fitted rows.
    expect(
      withUserHistory(withTest, { tower: 5, ranking: 0, rankingItems: 'all' }).dataset.interactions.context[USER_HISTORY]!.values[2],
    ).toEqual(['i2']);
  });
});
