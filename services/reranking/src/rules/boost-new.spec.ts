import { BoostNewRule, type BoostNewOptions } from './boost-new.js';
import { contextOf, entry, ids, NOW } from '../test-fixtures.js';

const DAY = 86400_000;

function rule(options: Partial<BoostNewOptions> = {}) {
  return new BoostNewRule({ name: 'boost_new', maxAgeMs: 7 * DAY, multiply: 1, add: 0, guarantee: undefined, ...options });
}

// n1, n2 are new; o* are old; x has no creation time; y is unknown to the feature service.
const items = {
  o1: { createdAtMs: NOW - 100 * DAY },
  o2: { createdAtMs: NOW - 30 * DAY },
  n1: { createdAtMs: NOW - DAY },
  o3: { createdAtMs: NOW - 8 * DAY },
  n2: { createdAtMs: NOW - 6 * DAY },
  x: { createdAtMs: 0 },
};
const list = () => [
  entry('o1', 0.9),
  entry('o2', 0.8),
  entry('x', 0.7),
  entry('n1', 0.6),
  entry('o3', 0.5),
  entry('y', 0.45),
  entry('n2', 0.4),
];

describe('boost_new', () => {
  it('multiplies new items’ scores and moves them to where the boosted score belongs, the others keeping their order', async () => {
    const result = await rule({ multiply: 2 }).apply(list(), contextOf({ items }));
    // n1: 0.6 → 1.2 goes first; n2: 0.4 → 0.8 ties with o2, which stays ahead (it was ahead before).
    expect(ids(result.list)).toEqual(['n1', 'o1', 'o2', 'n2', 'x', 'o3', 'y']);
    expect(result.list.map((e) => e.score)).toEqual([1.2, 0.9, 0.8, 0.8, 0.7, 0.5, 0.45]);
    expect(result.detail).toBe('2 new items, scores ×2 +0');
  });

  it('adds to the score; a tie keeps the old order', async () => {
    const result = await rule({ add: 0.1 }).apply(list(), contextOf({ items }));
    // n1 reaches 0.7, equal to x which was ahead of it; n2 reaches 0.5, equal to o3 which was ahead.
    expect(ids(result.list)).toEqual(['o1', 'o2', 'x', 'n1', 'o3', 'n2', 'y']);
  });

  it('guarantees at least N new items in the top K, displacing the top’s last non-new items', async () => {
    const result = await rule({ guarantee: { count: 2, withinTop: 3 } }).apply(list(), contextOf({ items }));
    expect(ids(result.list)).toEqual(['o1', 'n1', 'n2', 'o2', 'x', 'o3', 'y']);
    expect(result.detail).toBe('2 new items, 2 promoted into the top 3');
    // Already satisfied: nothing moves.
    const satisfied = await rule({ guarantee: { count: 1, withinTop: 4 } }).apply(list(), contextOf({ items }));
    expect(ids(satisfied.list)).toEqual(ids(list()));
  });

  it('promotes as many new items as exist, and nothing when the list is shorter than K', async () => {
    const result = await rule({ guarantee: { count: 3, withinTop: 3 } }).apply(list(), contextOf({ items }));
    expect(ids(result.list)).toEqual(['o1', 'n1', 'n2', 'o2', 'x', 'o3', 'y']);
    const short = list().slice(0, 4);
    expect(ids((await rule({ guarantee: { count: 2, withinTop: 10 } }).apply(short, contextOf({ items }))).list)).toEqual(ids(short));
  });

  it('never counts an unknown creation time as new', async () => {
    const result = await rule({ multiply: 10 }).apply([entry('x', 0.2), entry('y', 0.1), entry('o1', 0.3)], contextOf({ items }));
    expect(ids(result.list)).toEqual(['x', 'y', 'o1']);
    expect(result.detail).toBe('0 new items');
  });

  it('handles an empty list, and reports a failed item read leaving the list as it was', async () => {
    expect((await rule({ multiply: 2 }).apply([], contextOf({ items }))).list).toEqual([]);
    const failed = await rule({ multiply: 2 }).apply(list(), contextOf({ items: new Error('14 UNAVAILABLE: down') }));
    expect(ids(failed.list)).toEqual(ids(list()));
    expect(failed.list.map((e) => e.score)).toEqual(list().map((e) => e.score));
    expect(failed.error).toBe('reading item features failed: 14 UNAVAILABLE: down');
  });

  it('reads no item when every candidate carries its creation time, and reads only for those that do not', async () => {
    const carried = () => [entry('o1', 0.9, '', NOW - 100 * DAY), entry('n1', 0.6, '', NOW - DAY), entry('n2', 0.4, '', NOW - 6 * DAY)];
    const boost = rule({ multiply: 2 });
    expect(boost.needs(carried())).toEqual({ items: false });
    // The item read fails: an answer from the carried times shows the rule never asked for it.
    const result = await boost.apply(carried(), contextOf({ items: new Error('14 UNAVAILABLE: down') }));
    expect(ids(result.list)).toEqual(['n1', 'o1', 'n2']);
    expect(result.error).toBeUndefined();
    // One candidate without a time: the read happens, and fills in only that one.
    const mixed = [...carried(), entry('x', 0.95), entry('n3', 0.1)];
    expect(boost.needs(mixed)).toEqual({ items: true });
    const filled = await boost.apply(mixed, contextOf({ items: { ...items, n3: { createdAtMs: NOW - 2 * DAY } } }));
    expect(ids(filled.list)).toEqual(['n1', 'o1', 'x', 'n2', 'n3']);
  });
});
