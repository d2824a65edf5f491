import { RECENT_ITEMS, recentItemsColumn, userStateContext } from './history.js';
import { tableFromRows } from './table.js';
import { type Dataset, type TrainingSetup } from './types.js';

// One user's log in time order: rows are shuffled in storage to check the time ordering.
const rows = [
  { t: 5, item: 2, v: 1 },
  { t: 1, item: 0, v: 1 },
  { t: 3, item: 1, v: 0 },
  { t: 4, item: 1, v: 1 },
  { t: 9, item: 0, v: 1 },
];

function dataset(): Dataset {
  const n = rows.length;
  return {
    name: 'h',
    users: tableFromRows(['u', 'w'], [{}, {}]),
    items: tableFromRows(['i0', 'i1', 'i2'], [{}, {}, {}]),
    interactions: {
      length: n,
      user: new Int32Array(n),
      item: Int32Array.from(rows, (r) => r.item),
      value: Float32Array.from(rows, (r) => r.v),
      timestamp: Float64Array.from(rows, (r) => r.t),
      context: { device: { kind: 'categorical', values: ['a', 'b', 'c', 'd', 'e'] } },
    },
    positiveThreshold: 1,
  };
}

describe('recent items', () => {
  it('lists the earlier positives of the same user, newest first, up to the length', () => {
    const column = recentItemsColumn(dataset(), 2);
    expect(column.values).toEqual([
      ['i1', 'i0'], // t=5: after t=1 (i0, positive), t=3 (negative), t=4 (i1)
      [], // t=1: nothing before
      ['i0'], // t=3
      ['i0'], // t=4: the t=3 row was a negative
      ['i2', 'i1'], // t=9: i2 (t=5), i1 (t=4); i0 (t=1) is beyond the length
    ]);
  });

  it('gives each user the state at the end of the train data', () => {
    const d = dataset();
    d.interactions.context[RECENT_ITEMS] = recentItemsColumn(d, 3);
    // The t=9 row is test: the state is the train rows' history, and the latest train row's device.
    const setup = { dataset: d, split: Uint8Array.of(1, 1, 1, 1, 0) } as TrainingSetup;
    const state = userStateContext(setup, 3);
    expect(state.length).toBe(2);
    expect(state.columns[RECENT_ITEMS]!.values).toEqual([['i2', 'i1', 'i0'], []]);
    expect(state.columns.device!.values).toEqual(['a', '']);
  });
});
