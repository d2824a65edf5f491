import { PinRule, type Pin } from './pin.js';
import { contextOf, entry, ids } from '../test-fixtures.js';

const rule = (...pins: Pin[]) => new PinRule({ name: 'pin', pins });
const pin = (itemId: string, position: number, insert = false): Pin => ({ itemId, position, insert });
const list = () => ['a', 'b', 'c', 'd', 'e'].map((id, i) => entry(id, 1 - i / 10));

describe('pin', () => {
  it('puts items at their positions (1 is the top), the others keeping their order around them', async () => {
    const result = await rule(pin('e', 1), pin('a', 3)).apply(list(), contextOf());
    expect(ids(result.list)).toEqual(['e', 'b', 'a', 'c', 'd']);
    expect(result.detail).toBe('pinned 2 items (0 inserted)');
  });

  it('sends positions beyond the end to the end, in position order', async () => {
    const result = await rule(pin('a', 40), pin('b', 9)).apply(list(), contextOf());
    expect(ids(result.list)).toEqual(['c', 'd', 'e', 'b', 'a']);
    expect(ids((await rule(pin('a', 7)).apply([entry('a', 1)], contextOf())).list)).toEqual(['a']);
  });

  it('inserts an absent item only when configured to, with its category, unless an earlier rule removed it', async () => {
    const context = contextOf({ items: { promo: { category: 'ads' } }, removed: ['seen'] });
    const result = await rule(pin('promo', 2, true), pin('other', 1), pin('seen', 3, true)).apply(list(), context);
    expect(ids(result.list)).toEqual(['a', 'promo', 'b', 'c', 'd', 'e']);
    expect(result.list[1]).toMatchObject({ itemId: 'promo', score: 0, category: 'ads', channels: ['pin'] });
    expect(result.detail).toBe('pinned 1 items (1 inserted); 1 not among the candidates; 1 not inserted: removed by an earlier rule');
  });

  it('inserts into an empty list, and without a category when the item read fails', async () => {
    const result = await rule(pin('promo', 5, true)).apply([], contextOf({ items: new Error('down') }));
    expect(result.list).toEqual([{ itemId: 'promo', score: 0, category: '', createdAtMs: 0, channels: ['pin'], stageScores: [] }]);
    expect(result.error).toBeUndefined();
    expect(rule(pin('promo', 5, true)).needs()).toEqual({ items: true, extraItemIds: ['promo'] });
    expect(rule(pin('a', 1)).needs()).toEqual({});
  });
});
