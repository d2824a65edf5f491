import { hash32, shuffleNearEqual, ShuffleRule, utcDay } from './shuffle.js';
import { contextOf, entry, ids, NOW } from '../test-fixtures.js';
import type { Entry } from './rule.js';

const DAY = 86400_000;
const rule = (epsilon = 0.01, relative = false) => new ShuffleRule({ name: 'shuffle', epsilon, relative });
const flat = (n: number, score = 0.5) => Array.from({ length: n }, (_, i) => entry(`i${i}`, score));
const run = (list: Entry[], userId: string, nowMs: number, r = rule()) => ids(r.apply(list, contextOf({ userId, nowMs })).list);

describe('shuffle', () => {
  it('gives the same user the same order all (UTC) day, and another order another day or to another user', () => {
    const morning = run(flat(12), 'alice', Date.UTC(2026, 5, 15, 0, 1));
    expect(run(flat(12), 'alice', Date.UTC(2026, 5, 15, 23, 59))).toEqual(morning);
    expect(morning).not.toEqual(ids(flat(12)));
    expect(new Set(morning)).toEqual(new Set(ids(flat(12))));
    const days = [1, 2, 3].map((d) => run(flat(12), 'alice', Date.UTC(2026, 5, 15) + d * DAY));
    expect(days.some((order) => order.join() !== morning.join())).toBe(true);
    const users = ['bob', 'carol', 'dave'].map((u) => run(flat(12), u, Date.UTC(2026, 5, 15, 8)));
    expect(users.some((order) => order.join() !== morning.join())).toBe(true);
  });

  it('keeps two items’ relative order whatever else the group holds', () => {
    const full = run(flat(12), 'alice', NOW);
    const fewer = run(
      flat(12).filter((e) => e.itemId !== 'i3'),
      'alice',
      NOW,
    );
    expect(fewer).toEqual(full.filter((id) => id !== 'i3'));
  });

  it('never moves an item across a score gap larger than epsilon', () => {
    let seed = 3;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 40; trial++) {
      // Descending scores in steps that are sometimes under epsilon (0.01), sometimes well over.
      let score = 1;
      const input = Array.from({ length: 30 }, (_, i) => entry(`t${trial}-${i}`, (score -= random() < 0.6 ? 0.003 : 0.05)));
      const output = shuffleNearEqual(input, 0.01, false, `u${trial}|2026-06-15|`).list;
      // Groups: runs whose scores are within epsilon of the run's first.
      const groupOf = new Map<Entry, number>();
      let group = -1;
      let anchor = Infinity;
      for (const e of input) {
        if (!(Math.abs(e.score - anchor) < 0.01)) {
          group++;
          anchor = e.score;
        }
        groupOf.set(e, group);
      }
      expect(output.map((e) => groupOf.get(e))).toEqual(input.map((e) => groupOf.get(e)));
      for (let i = 1; i < output.length; i++) {
        if (output[i]!.score > output[i - 1]!.score) expect(output[i]!.score - output[i - 1]!.score).toBeLessThan(0.01);
      }
    }
  });

  it('handles ties, a relative epsilon, an empty list and a single item', () => {
    expect(shuffleNearEqual(flat(5), 1e-9, false, 's').groups).toBe(1);
    // Relative 10%: 1.0 and 0.95 group, 0.5 does not join them; 0.5 and 0.46 group.
    const scores = [entry('a', 1), entry('b', 0.95), entry('c', 0.5), entry('d', 0.46)];
    const { list, groups } = shuffleNearEqual(scores, 0.1, true, 's');
    expect(groups).toBe(2);
    expect(new Set(ids(list.slice(0, 2)))).toEqual(new Set(['a', 'b']));
    expect(rule().apply([], contextOf()).list).toEqual([]);
    expect(ids(rule().apply([entry('x', 1)], contextOf()).list)).toEqual(['x']);
    expect(rule().apply(flat(3), contextOf({ nowMs: NOW })).detail).toBe('1 groups of near-equal scores shuffled (seed day 2026-06-15)');
  });

  it('hashes with a good spread and names the UTC day', () => {
    expect(utcDay(Date.UTC(2026, 0, 2, 23, 59, 59))).toBe('2026-01-02');
    const buckets = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) buckets[hash32(`user|day|item${i}`) % 8]!++;
    for (const count of buckets) expect(Math.abs(count - 1000)).toBeLessThan(150);
  });
});
