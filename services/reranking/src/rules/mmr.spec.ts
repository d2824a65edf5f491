import { ItemVectors } from '../item-vectors.js';
import { maximalMarginalRelevance, MmrRule } from './mmr.js';
import { contextOf, entry, ids } from '../test-fixtures.js';

// a, a2 and a3 point the same way; b and c elsewhere; n has no vector.
const vectors = ItemVectors.fromRows(
  ['a', 'a2', 'a3', 'b', 'c'],
  [
    [1, 0, 0],
    [0.99, 0.1, 0],
    [0.98, 0, 0.1],
    [0, 1, 0],
    [0, 0.2, 1],
  ],
);
const rule = (lambda: number) => new MmrRule({ name: 'diversity', lambda, vectors });
const list = () => [entry('a', 0.9), entry('a2', 0.85), entry('a3', 0.8), entry('b', 0.6), entry('c', 0.5), entry('n', 0.4)];

describe('diversity: mmr', () => {
  it('with lambda 1 is relevance order', () => {
    expect(ids(rule(1).apply(list(), contextOf()).list)).toEqual(['a', 'a2', 'a3', 'b', 'c', 'n']);
    const shuffled = [list()[3]!, list()[0]!, list()[5]!, list()[2]!, list()[1]!, list()[4]!];
    expect(ids(rule(1).apply(shuffled, contextOf()).list)).toEqual(['a', 'a2', 'a3', 'b', 'c', 'n']);
  });

  it('pushes near-duplicates down as lambda falls', () => {
    expect(ids(rule(0.5).apply(list(), contextOf()).list)).toEqual(['a', 'b', 'c', 'n', 'a2', 'a3']);
    // Mostly relevance: one duplicate still beats the far less relevant b.
    expect(ids(rule(0.9).apply(list(), contextOf()).list)).toEqual(['a', 'a2', 'a3', 'b', 'c', 'n']);
  });

  it('counts an item without a vector as dissimilar to everything', () => {
    const input = [entry('a', 0.9), entry('a2', 0.8), entry('n', 0.79)];
    expect(ids(rule(0.7).apply(input, contextOf()).list)).toEqual(['a', 'n', 'a2']);
  });

  it('places only the first `limit` positions; the rest keep their order', () => {
    const input = [entry('c', 0.5), entry('a', 0.9), entry('n', 0.4), entry('a2', 0.85)];
    const result = rule(1).apply(input, contextOf({ limit: 2 }));
    expect(ids(result.list)).toEqual(['a', 'a2', 'c', 'n']);
    expect(result.detail).toBe('λ 1 over the first 2 positions; 1 of 4 items without a vector');
  });

  it('handles an empty list, one item and equal scores', () => {
    expect(rule(0.5).apply([], contextOf()).list).toEqual([]);
    expect(ids(rule(0.5).apply([entry('a', 1)], contextOf()).list)).toEqual(['a']);
    const equal = [entry('a', 0.5), entry('a2', 0.5), entry('b', 0.5)];
    expect(
      ids(
        maximalMarginalRelevance(
          equal,
          equal.map((e) => vectors.get(e.itemId)),
          0.5,
          3,
        ),
      ),
    ).toEqual(['a', 'b', 'a2']);
  });
});
