import { create, toBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import type { InputLayout } from '@recsys/model-format';
import { itemRow } from './feature-rows.js';
import { FeedAssembler } from './feeds.js';
import { EncodedItemReader } from './item-cache.js';
import { IdTable } from '@recsys/data';
import { CandidateItems, ItemTable, LINK_UNKNOWN, LiveItemTable } from './item-table.js';
import type { ItemBytesReader, ItemScanner } from './item-rows-wire.js';

const layout: InputLayout = {
  categorical: [{ kind: 'categorical', name: 'category', source: 'item', column: 'category', vocabulary: ['<unk>', 'a', 'b'], unknown: 0 }],
  multi: [{ kind: 'multi', name: 'tags', source: 'item', column: 'tags', vocabulary: ['<unk>', 'x', 'y'], unknown: 0, maxValues: 2 }],
  continuous: [{ kind: 'continuous', name: 'price', source: 'item', column: 'price', transform: 'identity', mean: 1, std: 3, missing: 1 }],
};
const assembler = FeedAssembler.of(layout);

type ItemInit = NonNullable<Parameters<typeof create<typeof features.ItemSchema>>[1]>;

function item(id: string, category: string, price: number, tags: string[] = []): ItemInit {
  return {
    itemId: id,
    category,
    createdAtMs: BigInt(1_700_000_000_000 + price),
    features: {
      values: {
        price: { kind: { case: 'numeric', value: price } },
        tags: { kind: { case: 'multi', value: { values: tags } } },
      },
    },
  };
}

/** A test double of the feature service's ScanItems: fixed pages of items, each answered as ScanItemsResponse bytes. */
class ScanDouble implements ItemScanner {
  calls = 0;
  failing = false;
  /** Pages that fail once before they answer (a Redis timeout under load). */
  flaky = new Set<number>();
  constructor(public pages: ItemInit[][]) {}

  async scanItemBytes(request: { cursor: string; limit: number }): Promise<Buffer> {
    this.calls++;
    if (this.failing) throw new Error('feature service unreachable');
    const page = request.cursor === '' ? 0 : Number(request.cursor);
    if (this.flaky.delete(page)) throw new Error('no answer within 2000 ms');
    const next = page + 1 < this.pages.length ? String(page + 1) : '';
    return Buffer.from(
      toBinary(
        features.ScanItemsResponseSchema,
        create(features.ScanItemsResponseSchema, { items: this.pages[page] ?? [], nextCursor: next }),
      ),
    );
  }
}

/** A test double of BatchGetItemFeatures (as bytes), counting the ids it is asked for. */
class BatchDouble implements ItemBytesReader {
  asked: string[][] = [];
  constructor(private readonly items: Map<string, ItemInit>) {}

  async batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer> {
    this.asked.push(request.itemIds);
    const message = create(features.BatchGetItemFeaturesResponseSchema, {
      items: request.itemIds.map((id) =>
        this.items.has(id) ? { found: true, item: this.items.get(id) } : { found: false, item: { itemId: id } },
      ),
      missingIds: request.itemIds.filter((id) => !this.items.has(id)),
    });
    return Buffer.from(toBinary(features.BatchGetItemFeaturesResponseSchema, message));
  }
}

const encoded = (init: ItemInit) => assembler.encodeItem(itemRow(init.itemId!, create(features.ItemSchema, init)));
const cacheOptions = { maxItems: 100, ttlMs: 60_000, missingTtlMs: 0 };

describe('ItemTable', () => {
  const pages = [[item('i1', 'a', 2, ['x']), item('i2', 'b', 5, ['y', 'x', 'x'])], [], [item('i3', 'zzz', 7), item('i1', 'b', 9, ['y'])]];

  it('reads every page into typed rows equal to the encoded items; an item scanned twice keeps its last values', async () => {
    const table = await ItemTable.load(new ScanDouble(pages), assembler, 100);
    expect(table.size).toBe(3);
    expect(table.ids.toArray()).toEqual(['i1', 'i2', 'i3']);
    const { codeWidth: cw, valueWidth: vw } = assembler;
    for (const init of [pages[2]![1]!, pages[0]![1]!, pages[2]![0]!]) {
      const row = table.ids.rowOf(init.itemId!);
      const want = encoded(init);
      expect(Array.from(table.codesOf(row))).toEqual(Array.from(want.subarray(0, cw)));
      expect(Array.from(table.valuesOf(row))).toEqual(Array.from(Float32Array.from(want.subarray(cw))));
      expect(table.valuesOf(row).length).toBe(vw);
      expect(table.createdAtOf(row)).toBe(Number(init.createdAtMs));
      expect(table.linkedRowOf(row)).toBeUndefined();
    }
    // One record per row: the creation time's two words, the codes and the values, made even.
    expect(table.stride % 2).toBe(0);
    expect(table.stride).toBeGreaterThanOrEqual(2 + cw + vw);
    expect(table.byteLength).toBe(table.ids.byteLength + 3 * table.stride * 4);
  });

  it('asks a page that failed again rather than failing the whole read', async () => {
    const scanner = new ScanDouble(pages);
    scanner.flaky = new Set([0, 2]);
    const table = await ItemTable.load(scanner, assembler, 100);
    expect(table.size).toBe(3);
    expect(scanner.calls).toBe(5);
  });

  it("records each item's row in a linked table (-1 where it has none), and none without one", async () => {
    const link = IdTable.from(['other', 'i3', 'i1']);
    const table = await ItemTable.load(new ScanDouble(pages), assembler, 100, link);
    const linkedRows = [0, 1, 2].map((row) => table.linkedRowOf(row));
    expect(linkedRows).toEqual(['i1', 'i2', 'i3'].map((id) => link.rowOf(id)));
    expect(linkedRows).toEqual([2, -1, 1]);
    // The link's word does not disturb the rest of the record.
    const plain = await ItemTable.load(new ScanDouble(pages), assembler, 100);
    for (let row = 0; row < 3; row++) {
      expect(Array.from(table.codesOf(row))).toEqual(Array.from(plain.codesOf(row)));
      expect(Array.from(table.valuesOf(row))).toEqual(Array.from(plain.valuesOf(row)));
      expect(table.createdAtOf(row)).toBe(plain.createdAtOf(row));
    }
    expect(plain.linkedRowOf(0)).toBeUndefined();
  });

  it('grows its records past the first 16,384 rows, every row kept', async () => {
    const many = Array.from({ length: 10 }, (_, p) =>
      Array.from({ length: 2000 }, (_, k) => item(`m${p * 2000 + k}`, `c${k % 7}`, (p * 2000 + k) % 97, k % 3 ? ['x'] : [])),
    );
    const link = IdTable.from(Array.from({ length: 20_000 }, (_, k) => `m${19_999 - k}`));
    const table = await ItemTable.load(new ScanDouble(many), assembler, 100_000, link);
    expect(table.size).toBe(20_000);
    for (const k of [0, 16_383, 16_384, 19_999]) {
      const init = many[Math.floor(k / 2000)]![k % 2000]!;
      const row = table.ids.rowOf(`m${k}`);
      const want = encoded(init);
      expect(Array.from(table.codesOf(row))).toEqual(Array.from(want.subarray(0, assembler.codeWidth)));
      expect(Array.from(table.valuesOf(row))).toEqual(Array.from(Float32Array.from(want.subarray(assembler.codeWidth))));
      expect(table.createdAtOf(row)).toBe(Number(init.createdAtMs));
      expect(table.linkedRowOf(row)).toBe(19_999 - k);
    }
  });

  it('holds at most maxItems (the first scanned), still updating those it holds', async () => {
    const table = await ItemTable.load(new ScanDouble(pages), assembler, 2);
    expect(table.ids.toArray()).toEqual(['i1', 'i2']);
    expect(table.valuesOf(table.ids.rowOf('i1'))[0]).toBeCloseTo((9 - 1) / 3, 6);
  });
});

describe('CandidateItems', () => {
  const stored = new Map<string, ItemInit>([
    ['i1', item('i1', 'a', 2, ['x'])],
    ['i2', item('i2', 'b', 5, ['y'])],
    ['late', item('late', 'a', 11, ['x', 'y'])],
  ]);

  it('copies table rows and reads only what the table lacks, in one call; the batch equals one of encoded items', async () => {
    const live = await LiveItemTable.start(new ScanDouble([[stored.get('i1')!, stored.get('i2')!]]), assembler, {
      maxItems: 100,
      refreshMs: 0,
      label: 'test',
    });
    const hits: number[] = [];
    const items = new CandidateItems(assembler, new EncodedItemReader(assembler, cacheOptions), live, {
      itemTableRead: (n) => hits.push(n),
    });
    const batchReader = new BatchDouble(stored);
    const ids = ['i2', 'late', 'never', 'i1'];
    const read = await items.read(batchReader, ids);
    expect(batchReader.asked).toEqual([['late', 'never']]);
    expect(hits).toEqual([2]);
    expect(read.missing).toEqual(['never']);
    expect(Array.from(read.createdAtMs)).toEqual([1_700_000_000_005, 1_700_000_000_011, 0, 1_700_000_000_002]);
    const expected = assembler.batchOf(
      ids.map((id) => assembler.encodeItem(itemRow(id, stored.has(id) ? create(features.ItemSchema, stored.get(id)) : undefined))),
    );
    expect(Array.from(read.batch.codes)).toEqual(Array.from(expected.codes));
    expect(Array.from(read.batch.values)).toEqual(Array.from(expected.values));
    // Table items never reach the feature service; the late one is cached now.
    await items.read(batchReader, ['i1', 'late']);
    expect(batchReader.asked).toHaveLength(1);
    items.close();
    expect(items.table).toBeUndefined();
  });

  it("gives each candidate's linked row from the table, LINK_UNKNOWN for those read through", async () => {
    const link = IdTable.from(['late', 'i1', 'x']);
    const live = await LiveItemTable.start(new ScanDouble([[stored.get('i1')!, stored.get('i2')!]]), assembler, {
      maxItems: 100,
      refreshMs: 0,
      label: 'test',
      link,
    });
    const items = new CandidateItems(assembler, new EncodedItemReader(assembler, cacheOptions), live);
    const read = await items.read(new BatchDouble(stored), ['i2', 'late', 'i1', 'never']);
    expect(Array.from(read.linked!)).toEqual([-1, LINK_UNKNOWN, 1, LINK_UNKNOWN]);
    // Without a link there is nothing to give.
    const plain = await LiveItemTable.start(new ScanDouble([[stored.get('i1')!]]), assembler, {
      maxItems: 100,
      refreshMs: 0,
      label: 'test',
    });
    const unlinked = new CandidateItems(assembler, new EncodedItemReader(assembler, cacheOptions), plain);
    expect((await unlinked.read(new BatchDouble(stored), ['i1'])).linked).toBeUndefined();
    items.close();
    unlinked.close();
  });

  it('serves through the item cache when the table cannot be read, and warns', async () => {
    const scanner = new ScanDouble([[stored.get('i1')!]]);
    scanner.failing = true;
    const warnings: string[] = [];
    const live = await LiveItemTable.start(scanner, assembler, {
      maxItems: 100,
      refreshMs: 0,
      label: 'dlrm v9',
      logger: { info: () => undefined, warn: (_fields, message) => warnings.push(message) },
    });
    expect(live.table).toBeUndefined();
    expect(warnings[0]).toMatch(/^dlrm v9: the item table could not be read \(feature service unreachable\); items are read per request/);
    const items = new CandidateItems(assembler, new EncodedItemReader(assembler, cacheOptions), live);
    const batchReader = new BatchDouble(stored);
    const read = await items.read(batchReader, ['i1', 'i2']);
    expect(batchReader.asked).toEqual([['i1', 'i2']]);
    expect(read.missing).toEqual([]);
    // Once the feature service answers, the next read fills the table.
    scanner.failing = false;
    await live.read();
    expect(live.table?.size).toBe(1);
    items.close();
  });
});
