import { cardinality, checkFeature, encodeCategorical, encodeContinuous, encodeMulti, encodeTable } from './encode.js';
import { hashBucket } from './hash.js';
import { tableFromRows } from './table.js';
import { type CategoricalFeature, type ContinuousFeature, type MultiCategoricalFeature } from './types.js';

const color: CategoricalFeature = {
  kind: 'categorical',
  name: 'color',
  source: 'item',
  column: 'color',
  vocabulary: ['<unk>', 'blue', 'red'],
  unknown: 0,
};
const brand: CategoricalFeature = { kind: 'categorical', name: 'brand', source: 'item', column: 'brand', hashBuckets: 50, unknown: 0 };
const tags: MultiCategoricalFeature = {
  kind: 'multi',
  name: 'tags',
  source: 'item',
  column: 'tags',
  vocabulary: ['<unk>', 'a', 'b', 'c'],
  unknown: 0,
  maxValues: 2,
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

describe('encoders', () => {
  it('sizes features', () => {
    expect(cardinality(color)).toBe(3);
    expect(cardinality(brand)).toBe(50);
    expect(cardinality(tags)).toBe(4);
    expect(cardinality(price)).toBe(0);
  });

  it('encodes categorical values by vocabulary position, hash bucket or unknown', () => {
    expect(encodeCategorical(color, 'red')).toBe(2);
    expect(encodeCategorical(color, 'blue')).toBe(1);
    expect(encodeCategorical(color, 'green')).toBe(0);
    expect(encodeCategorical(color, '')).toBe(0);
    expect(encodeCategorical({ ...color, unknown: 1 }, 'green')).toBe(1);
    expect(encodeCategorical(brand, 'acme')).toBe(hashBucket('acme', 50));
    expect(encodeCategorical({ ...brand, unknown: 7 }, '')).toBe(7);
  });

  it('re-indexes a replaced vocabulary', () => {
    const feature = { ...color };
    expect(encodeCategorical(feature, 'red')).toBe(2);
    feature.vocabulary = ['<unk>', 'red'];
    expect(encodeCategorical(feature, 'red')).toBe(1);
  });

  it('encodes multi values up to maxValues', () => {
    const out = new Int32Array(6).fill(-1);
    expect(encodeMulti(tags, ['c', 'zzz', 'a'], out, 1)).toBe(2);
    expect(Array.from(out)).toEqual([-1, 3, 0, -1, -1, -1]);
    expect(encodeMulti(tags, [], out, 4)).toBe(0);
  });

  it('normalises continuous values and uses missing for NaN', () => {
    expect(encodeContinuous(price, Math.E - 1)).toBeCloseTo(0);
    expect(encodeContinuous(price, NaN)).toBeCloseTo((0.5 - 1) / 2);
    expect(encodeContinuous({ ...price, transform: 'identity' }, 5)).toBe(2);
  });

  it('encodes a table column by column', () => {
    const table = tableFromRows(
      ['i1', 'i2', 'i3'],
      [
        { color: 'red', brand: 'acme', tags: ['a', 'b', 'c'], price: 0 },
        { color: 'pink', brand: '', tags: [], price: NaN },
        { color: 'blue', tags: ['b'] },
      ],
    );
    const itemId: CategoricalFeature = {
      kind: 'categorical',
      name: 'item_id',
      source: 'item',
      column: 'item_id',
      vocabulary: ['<unk>', 'i3', 'i1'],
      unknown: 0,
    };
    const encoded = encodeTable(table, [itemId, color, brand, tags, price]);
    expect(encoded.rows).toBe(3);
    expect(Array.from(encoded.categorical.get('item_id')!)).toEqual([2, 0, 1]);
    expect(Array.from(encoded.categorical.get('color')!)).toEqual([2, 0, 1]);
    expect(Array.from(encoded.categorical.get('brand')!)).toEqual([hashBucket('acme', 50), 0, 0]);
    const multi = encoded.multi.get('tags')!;
    expect(multi.maxValues).toBe(2);
    expect(Array.from(multi.counts)).toEqual([2, 0, 1]);
    expect(Array.from(multi.codes)).toEqual([1, 2, 0, 0, 2, 0]);
    const continuous = encoded.continuous.get('price')!;
    expect(continuous).toBeInstanceOf(Float32Array);
    expect(Array.from(continuous)).toEqual([-0.5, -0.25, -0.25]);
    expect(encodeTable(table, [color, { ...price, source: 'user' }], 'item').continuous.size).toBe(0);
    expect(encodeTable({ columns: { color: table.columns.color! }, length: 3 }, [color]).categorical.get('color')).toEqual(
      encoded.categorical.get('color'),
    );
  });

  it('names the feature and column when a column is missing or of the wrong kind', () => {
    const table = tableFromRows(['i1'], [{ color: 'red', price: 3 }]);
    expect(() => encodeTable(table, [{ ...color, name: 'shade', column: 'shade' }])).toThrow(
      'feature "shade": column "shade" is missing from the item table (columns: color, price)',
    );
    expect(() => encodeTable(table, [{ ...color, column: 'price' }])).toThrow('feature "color": column "price" is numeric');
    expect(() => encodeTable(table, [{ ...price, column: 'color' }])).toThrow('feature "price": column "color" is categorical');
    expect(() => encodeTable(table, [color, color])).toThrow('feature "color": the name is used twice');
    expect(() => encodeTable({ columns: {} }, [color])).toThrow('neither ids nor a length');
  });

  it('refuses features that cannot encode', () => {
    expect(() => checkFeature({ ...color, vocabulary: undefined })).toThrow('feature "color": needs a vocabulary or hashBuckets');
    expect(() => checkFeature({ ...color, unknown: 3 })).toThrow('feature "color" (column "color"): unknown 3 is outside 0..2');
    expect(() => checkFeature({ ...brand, hashBuckets: 0 })).toThrow('hashBuckets must be a positive integer');
    expect(() => checkFeature({ ...tags, maxValues: 0 })).toThrow('feature "tags" (column "tags"): maxValues must be a positive integer');
    expect(() => checkFeature({ ...price, std: 0 })).toThrow('feature "price" (column "price"): std must be a positive number');
    expect(() => encodeCategorical({ ...color, vocabulary: undefined }, 'x')).toThrow('feature "color"');
  });
});
