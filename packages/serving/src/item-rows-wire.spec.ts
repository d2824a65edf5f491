import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { common, features } from '@recsys/contracts';
import { itemRow } from './feature-rows.js';
import { decodeItemRows, ItemColumns } from './item-rows-wire.js';

const cat = (value: string) => ({ kind: { case: 'categorical' as const, value } });
const num = (value: number) => ({ kind: { case: 'numeric' as const, value } });
const multi = (values: string[]) => ({ kind: { case: 'multi' as const, value: { values } } });

describe('decodeItemRows', () => {
  const columns = new ItemColumns(['category', 'created_at', 'price', 'tags', 'label', 'emb', 'empty', 'absent']);

  it('gives every column the value itemRow (of @recsys/serving) gives from the decoded message', () => {
    const items: { id: string; found: boolean; item?: Parameters<typeof create<typeof features.ItemSchema>>[1] }[] = [
      {
        id: 'a',
        found: true,
        item: {
          itemId: 'a',
          category: 'books',
          createdAtMs: 1_700_000_000_123n,
          features: {
            values: {
              category: cat('ignored: the field wins'),
              price: num(9.5),
              tags: multi(['x', 'ü', 'z'.repeat(100)]),
              label: cat('ラベル'),
            },
          },
        },
      },
      {
        id: 'b',
        found: true,
        item: {
          itemId: 'b',
          features: {
            values: {
              category: cat('from a feature'),
              created_at: num(42),
              price: num(-0.25),
              emb: { kind: { case: 'vector', value: { values: [1, 2] } } },
              empty: { kind: { case: undefined } },
              tags: multi([]),
            },
          },
        },
      },
      { id: 'missing', found: false },
      {
        id: 'c',
        found: true,
        item: { itemId: 'c', createdAtMs: -5n, features: { values: { price: num(Number.MAX_VALUE), label: num(3) } } },
      },
      { id: 'd', found: true, item: { itemId: 'd' } },
    ];
    const message = create(features.BatchGetItemFeaturesResponseSchema, {
      items: items.map(({ found, item }) => ({ found, item: found ? item : { itemId: 'missing' } })),
      missingIds: ['missing'],
    });
    const bytes = Buffer.from(toBinary(features.BatchGetItemFeaturesResponseSchema, message));
    const decoded = decodeItemRows(
      bytes,
      items.map((i) => i.id),
      columns,
    );
    expect(decoded.missing).toEqual(['missing']);
    expect(decoded.rows.map((r) => r.id)).toEqual(items.map((i) => i.id));
    expect(decoded.rows.map((r) => r.found)).toEqual(items.map((i) => i.found));
    message.items.forEach((result, k) => {
      const expected = itemRow(items[k]!.id, result.found ? result.item : undefined);
      for (const column of columns.names) {
        expect({ id: items[k]!.id, column, value: decoded.rows[k]!.get(column) }).toEqual({
          id: items[k]!.id,
          column,
          value: expected.get(column),
        });
      }
    });
    expect(decoded.rows[0]!.get('category')).toBe('books');
    expect(decoded.rows[1]!.get('category')).toBe('from a feature');
    expect(decoded.rows[0]!.get('tags')).toEqual(['x', 'ü', 'z'.repeat(100)]);
  });

  it('reads an item whose features come before its own fields', () => {
    // Item {features = 4 first, then category = 2}: valid protobuf, though protobuf-es writes field order.
    const value = toBinary(common.FeatureValueSchema, create(common.FeatureValueSchema, cat('feature')));
    const item = new BinaryWriter();
    item.tag(4, WireType.LengthDelimited).fork();
    item
      .tag(1, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string('category')
      .tag(2, WireType.LengthDelimited)
      .bytes(value)
      .join();
    item.join();
    item.tag(2, WireType.LengthDelimited).string('field');
    const answer = new BinaryWriter();
    answer
      .tag(1, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.Varint)
      .bool(true)
      .tag(2, WireType.LengthDelimited)
      .bytes(item.finish())
      .join();
    const rows = decodeItemRows(Buffer.from(answer.finish()), ['x', 'y'], columns).rows;
    expect(rows[0]!.get('category')).toBe('field');
    // An answer shorter than the question leaves the rest unknown.
    expect(rows[1]).toMatchObject({ id: 'y', found: false });
    expect(rows[1]!.get('category')).toBeUndefined();
  });

  it('refuses truncated bytes', () => {
    const bytes = Buffer.from(
      toBinary(
        features.BatchGetItemFeaturesResponseSchema,
        create(features.BatchGetItemFeaturesResponseSchema, { items: [{ found: true, item: { itemId: 'a', category: 'books' } }] }),
      ),
    );
    expect(() => decodeItemRows(bytes.subarray(0, bytes.length - 3), ['a'], columns)).toThrow(RangeError);
  });
});
