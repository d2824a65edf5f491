import { createTable, tableFromRows, tableRow, withColumns } from './table.js';

describe('tables', () => {
  it('infers column kinds and fills missing values', () => {
    const table = tableFromRows(
      ['a', 'b'],
      [
        { country: 'fr', age: 31, likes: ['games', 'music'] },
        { country: 'de', likes: [] },
      ],
    );
    expect(table.ids).toEqual(['a', 'b']);
    expect(table.index).toEqual(
      new Map([
        ['a', 0],
        ['b', 1],
      ]),
    );
    expect(table.columns.country).toEqual({ kind: 'categorical', values: ['fr', 'de'] });
    expect(table.columns.likes).toEqual({ kind: 'multi', values: [['games', 'music'], []] });
    expect(table.columns.age!.kind).toBe('numeric');
    expect(Array.from(table.columns.age!.values as Float64Array)).toEqual([31, NaN]);
    expect(tableRow(table, 'a')).toEqual({ country: 'fr', age: 31, likes: ['games', 'music'] });
    expect(tableRow(table, 1)).toEqual({ country: 'de', age: NaN, likes: [] });
  });

  it('names a column that mixes kinds, and other bad input', () => {
    expect(() => tableFromRows(['a', 'b'], [{ age: 3 }, { age: '3' }])).toThrow(
      'column "age" mixes numeric and categorical values (row 1, id b)',
    );
    expect(() => tableFromRows(['a'], [{ x: [1] as unknown as string[] }])).toThrow('column "x": unsupported value [1]');
    expect(() => tableFromRows(['a', 'a'], [{}, {}])).toThrow('duplicate id "a" (rows 0 and 1)');
    expect(() => tableFromRows(['a'], [])).toThrow('1 ids for 0 rows');
    expect(() => createTable(['a'], { x: { kind: 'categorical', values: [] } })).toThrow('column "x" has 0 values for 1 ids');
    const table = createTable(['a']);
    expect(() => tableRow(table, 'zz')).toThrow('no row with id "zz"');
    expect(() => tableRow(table, 4)).toThrow('row index 4 is out of range');
  });

  it('adds columns without touching the input', () => {
    const table = tableFromRows(['a'], [{ country: 'fr' }]);
    const wider = withColumns(table, { n: { kind: 'numeric', values: new Float64Array([2]) } });
    expect(Object.keys(wider.columns)).toEqual(['country', 'n']);
    expect(Object.keys(table.columns)).toEqual(['country']);
    expect(() => withColumns(table, { n: { kind: 'numeric', values: new Float64Array(2) } })).toThrow('column "n" has 2 values for 1 ids');
  });
});
