import { BlockRule } from './block.js';
import { contextOf, entry, ids } from '../test-fixtures.js';

const rule = (itemIds: string[], categories: string[] = []) =>
  new BlockRule({ name: 'block', itemIds: new Set(itemIds), categories: new Set(categories) });
const list = () => [entry('a', 0.9, 'news'), entry('b', 0.8), entry('c', 0.7, 'sport'), entry('d', 0.6)];

describe('block', () => {
  it('removes blocked ids and blocked categories, the candidate’s or the feature service’s', async () => {
    const context = contextOf({ items: { b: { category: 'gambling' }, d: { category: 'sport' } } });
    const result = await rule(['c'], ['gambling', 'news']).apply(list(), context);
    expect(ids(result.list)).toEqual(['d']);
    expect(result.detail).toBe('blocked 3 items (1 by id, 2 by category)');
    expect(context.reads.items).toBe(1);
  });

  it('does not read the feature service for id blocks, nor when every candidate has its category', async () => {
    const context = contextOf();
    expect(ids((await rule(['a', 'zz']).apply(list(), context)).list)).toEqual(['b', 'c', 'd']);
    expect(ids((await rule([], ['sport']).apply([entry('a', 1, 'news'), entry('c', 0.5, 'sport')], context)).list)).toEqual(['a']);
    expect(context.reads.items).toBe(0);
    expect(rule([], ['x']).needs([entry('a', 1)])).toEqual({ items: true });
    expect(rule(['a']).needs([entry('a', 1)])).toEqual({ items: false });
  });

  it('may remove everything, and leaves an empty list empty', async () => {
    const result = await rule(['a', 'b', 'c', 'd']).apply(list(), contextOf());
    expect(result.list).toEqual([]);
    expect((await rule(['a']).apply([], contextOf())).list).toEqual([]);
  });

  it('still blocks by id and by known categories when the category read fails, and says so', async () => {
    const result = await rule(['a'], ['sport']).apply(list(), contextOf({ items: new Error('14 UNAVAILABLE: down') }));
    expect(ids(result.list)).toEqual(['b', 'd']);
    expect(result.error).toBe('reading item categories failed: 14 UNAVAILABLE: down; items without a category were only checked by id');
  });
});
