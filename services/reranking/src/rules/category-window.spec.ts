import { arrangeByCategoryWindow, CategoryWindowRule } from './category-window.js';
import { contextOf, entry, ids } from '../test-fixtures.js';
import type { Entry } from './rule.js';

const rule = (window: number, maxPerCategory: number) => new CategoryWindowRule({ name: 'diversity', window, maxPerCategory });
const list = (spec: string) => spec.split(' ').map((id, i) => entry(id, 1 - i / 100, id[0]!));

/** The largest count of one category in any `window` consecutive entries. */
function worstWindow(result: readonly Entry[], window: number): number {
  let worst = 0;
  for (let start = 0; start < result.length; start++) {
    const counts = new Map<string, number>();
    for (const e of result.slice(start, start + window)) if (e.category) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
    worst = Math.max(worst, ...counts.values());
  }
  return worst;
}

/** The arrangement as first written (findIndex from the front for every position, O(n²)): what the heap must equal. */
function reference(list: readonly Entry[], window: number, maxPerCategory: number): { arranged: Entry[]; relaxed: number } {
  const remaining = list.slice();
  const arranged: Entry[] = [];
  const inWindow = new Map<string, number>();
  const countOf = (category: string) => (category === '' ? 0 : (inWindow.get(category) ?? 0));
  let relaxed = 0;
  while (remaining.length > 0) {
    let pick = remaining.findIndex((entry) => countOf(entry.category) < maxPerCategory);
    if (pick < 0) {
      relaxed++;
      pick = 0;
      for (let i = 1; i < remaining.length; i++) if (countOf(remaining[i]!.category) < countOf(remaining[pick]!.category)) pick = i;
    }
    const [entry] = remaining.splice(pick, 1) as [Entry];
    arranged.push(entry);
    if (entry.category !== '') inWindow.set(entry.category, countOf(entry.category) + 1);
    if (arranged.length >= window) {
      const leaving = arranged[arranged.length - window]!.category;
      if (leaving !== '') inWindow.set(leaving, countOf(leaving) - 1);
    }
  }
  return { arranged, relaxed };
}

describe('diversity: category_window', () => {
  it('arranges exactly as the first-written O(n²) greedy, relaxations and unknown categories included', () => {
    let seed = 11;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let relaxations = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const window = 2 + Math.floor(random() * 8);
      const max = 1 + Math.floor(random() * (window - 1));
      const categories = ['', ...'abcdefgh'.slice(0, 1 + Math.floor(random() * 8))];
      // Skewed towards the first categories, as a ranked list often is.
      const input = Array.from({ length: Math.floor(random() * 60) }, (_, i) =>
        entry(`i${i}`, 1 - i / 100, categories[Math.floor(random() ** 2 * categories.length)]!),
      );
      const got = arrangeByCategoryWindow(input, window, max);
      const want = reference(input, window, max);
      expect({ trial, window, max, ids: ids(got.arranged), relaxed: got.relaxed }).toEqual({
        trial,
        window,
        max,
        ids: ids(want.arranged),
        relaxed: want.relaxed,
      });
      relaxations += want.relaxed;
    }
    // The trials reach the relaxation often, not by luck.
    expect(relaxations).toBeGreaterThan(1000);
  });

  it('takes, position by position, the best remaining item that fits the window', async () => {
    const result = await rule(3, 1).apply(list('a1 a2 a3 b1 b2 c1'), contextOf());
    expect(ids(result.list)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    // The last position had only a3 left: taken anyway rather than cutting the answer short.
    expect(result.detail).toBe('at most 1 per category in 3; relaxed at 1 positions (too few categories left)');
  });

  it('keeps every item when all are of one category, in their order', async () => {
    const result = await rule(4, 2).apply(list('a1 a2 a3 a4 a5'), contextOf());
    expect(ids(result.list)).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect(result.detail).toContain('relaxed at 3 positions');
  });

  it('relaxes towards the least represented category in the window', () => {
    // Window 5, 1 each: from the third position on nothing fits. At the fourth the window holds a1 b1 a2,
    // so b2 (its category once there) goes before a3 (twice there).
    const { arranged, relaxed } = arrangeByCategoryWindow(list('a1 a2 b1 a3 b2'), 5, 1);
    expect(ids(arranged)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    expect(relaxed).toBe(3);
  });

  it('handles an empty list and fewer items than the window', async () => {
    expect((await rule(5, 2).apply([], contextOf())).list).toEqual([]);
    expect(ids((await rule(5, 2).apply(list('a1 a2 a3 b1'), contextOf())).list)).toEqual(['a1', 'a2', 'b1', 'a3']);
  });

  it('holds the constraint whenever enough categories remain', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 50; trial++) {
      const input = Array.from({ length: 40 }, (_, i) => entry(`i${i}`, 1 - i / 40, 'abcdef'[Math.floor(random() * 6)]!));
      const { arranged, relaxed } = arrangeByCategoryWindow(input, 5, 2);
      expect(new Set(ids(arranged))).toEqual(new Set(ids(input)));
      if (relaxed === 0) expect(worstWindow(arranged, 5)).toBeLessThanOrEqual(2);
      // The head, built while many categories remain, always holds.
      expect(worstWindow(arranged.slice(0, 20), 5)).toBeLessThanOrEqual(2);
    }
  });

  it('reads missing categories from the feature service once; unknown ones are never limited', async () => {
    const input = [entry('x1', 0.9), entry('x2', 0.8), entry('u1', 0.7), entry('u2', 0.6), entry('y1', 0.5, 'y')];
    const context = contextOf({ items: { x1: { category: 'x' }, x2: { category: 'x' } } });
    const result = await rule(2, 1).apply(input, context);
    expect(ids(result.list)).toEqual(['x1', 'u1', 'x2', 'u2', 'y1']);
    expect(result.list.map((e) => e.category)).toEqual(['x', '', 'x', '', 'y']);
    expect(context.reads.items).toBe(1);
  });

  it('reports a failed category read and does not limit the items it could not place', async () => {
    const input = [entry('x1', 0.9), entry('x2', 0.8), entry('y1', 0.7, 'y'), entry('y2', 0.6, 'y'), entry('z', 0.5, 'z')];
    const result = await rule(2, 1).apply(input, contextOf({ items: new Error('14 UNAVAILABLE: down') }));
    expect(ids(result.list)).toEqual(['x1', 'x2', 'y1', 'z', 'y2']);
    expect(result.error).toBe('reading item categories failed: 14 UNAVAILABLE: down; items without a category were not limited');
  });
});
