import { common, features, fieldTag, WIRE } from '@recsys/contracts';
import type { FeatureRow, RawValue } from './feature-rows.js';

const VARINT = WIRE.varint;
const FIXED64 = WIRE.fixed64;
const LEN = WIRE.length;
const FIXED32 = WIRE.fixed32;
// Tags from the generated descriptors (the BatchGetItemFeaturesResponse the feature service answers, read straight from
// the wire). A map's entries are messages whose key is field 1 and value field 2: that is protobuf's wire format.
const T = {
  items: fieldTag(features.BatchGetItemFeaturesResponseSchema, 'items', LEN),
  missingIds: fieldTag(features.BatchGetItemFeaturesResponseSchema, 'missingIds', LEN),
  found: fieldTag(features.ItemResultSchema, 'found', VARINT),
  item: fieldTag(features.ItemResultSchema, 'item', LEN),
  scanItems: fieldTag(features.ScanItemsResponseSchema, 'items', LEN),
  nextCursor: fieldTag(features.ScanItemsResponseSchema, 'nextCursor', LEN),
  itemId: fieldTag(features.ItemSchema, 'itemId', LEN),
  category: fieldTag(features.ItemSchema, 'category', LEN),
  createdAt: fieldTag(features.ItemSchema, 'createdAtMs', VARINT),
  features: fieldTag(features.ItemSchema, 'features', LEN),
  values: fieldTag(common.FeaturesSchema, 'values', LEN),
  // eslint-disable-next-line no-restricted-syntax -- map entries' key = 1 is protobuf's wire format, not a contract field
  mapKey: (1 << 3) | LEN,
  // eslint-disable-next-line no-restricted-syntax -- map entries' value = 2, likewise
  mapValue: (2 << 3) | LEN,
  categorical: fieldTag(common.FeatureValueSchema, 'categorical', LEN),
  numeric: fieldTag(common.FeatureValueSchema, 'numeric', FIXED64),
  multi: fieldTag(common.FeatureValueSchema, 'multi', LEN),
  vector: fieldTag(common.FeatureValueSchema, 'vector', LEN),
  listValue: fieldTag(common.StringListSchema, 'values', LEN),
};

/** Item fields that serving reads as columns of the same name (see `itemRow`). */
const CATEGORY = 'category';
const CREATED_AT = 'created_at';

/** The stored columns a model reads from items, each with its position in a row's values. */
export class ItemColumns {
  readonly index: ReadonlyMap<string, number>;
  private readonly category: number;
  private readonly createdAt: number;
  /** The names as UTF-8 bytes: map keys on the wire are matched without making a string of each. */
  private readonly encoded: Buffer[];

  constructor(readonly names: readonly string[]) {
    this.index = new Map(names.map((name, k) => [name, k]));
    this.category = this.index.get(CATEGORY) ?? -1;
    this.createdAt = this.index.get(CREATED_AT) ?? -1;
    this.encoded = names.map((name) => Buffer.from(name, 'utf8'));
  }

  /** The slot of the column whose name is buf[start, end), if the model reads it. */
  slotOf(buf: Buffer, start: number, end: number): number | undefined {
    const length = end - start;
    for (let slot = 0; slot < this.encoded.length; slot++) {
      const name = this.encoded[slot]!;
      if (name.length !== length) continue;
      let k = 0;
      while (k < length && name[k] === buf[start + k]) k++;
      if (k === length) return slot;
    }
    return undefined;
  }

  /** Where the Item's own fields go, if the model reads them. */
  get categorySlot(): number {
    return this.category;
  }

  get createdAtSlot(): number {
    return this.createdAt;
  }
}

/** An item with only the columns the model reads, as `itemRow` would give them, and whether the feature service knew it. */
export class ItemColumnsRow implements FeatureRow {
  constructor(
    readonly id: string,
    private readonly columns: ItemColumns,
    private readonly values: RawValue[] | undefined,
    /** False for an item the feature service does not know (every column reads as missing). */
    readonly found: boolean,
    /** The Item's created_at_ms (0 when unknown), whether or not the model reads it: answers carry it on. */
    readonly createdAtMs = 0,
  ) {}

  get(column: string): RawValue {
    const slot = this.columns.index.get(column);
    return slot === undefined || this.values === undefined ? undefined : this.values[slot];
  }
}

/** A cursor over protobuf bytes: only what these messages use. */
class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Buffer) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  varint(): number {
    let result = 0;
    let shift = 1;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new RangeError('truncated varint');
      result += (b & 0x7f) * shift;
      if (b < 0x80) return result;
      shift *= 128;
      if (shift > 2 ** 63) throw new RangeError('varint too long');
    }
  }

  /** int64 as a number: Unix milliseconds fit in 53 bits; two's complement covers negative values. */
  int64(): number {
    const start = this.pos;
    const value = this.varint();
    if (this.pos - start < 10) return value;
    this.pos = start;
    let big = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = this.buf[this.pos++]!;
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return Number(BigInt.asIntN(64, big));
    }
  }

  /** The end offset of a length-delimited field that starts here. */
  end(): number {
    const end = this.varint() + this.pos;
    if (end > this.buf.length) throw new RangeError('length beyond the message');
    return end;
  }

  string(): string {
    const end = this.end();
    const buf = this.buf;
    let text = '';
    // Ids, names and categories are short and mostly ASCII: building them here beats a native call per string.
    if (end - this.pos <= 64) {
      for (let k = this.pos; k < end; k++) {
        const b = buf[k]!;
        if (b >= 0x80) {
          text = buf.toString('utf8', this.pos, end);
          break;
        }
        text += String.fromCharCode(b);
      }
    } else text = buf.toString('utf8', this.pos, end);
    this.pos = end;
    return text;
  }

  double(): number {
    const value = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return value;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === LEN) this.pos = this.end();
    else if (wireType === FIXED32) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
  }
}

/** A FeatureValue as serving reads it: categorical text, a number, several values; vectors are not model inputs. */
function featureValue(c: Cursor, end: number): RawValue {
  let value: RawValue;
  while (c.pos < end) {
    const t = c.varint();
    if (t === T.categorical) value = c.string();
    else if (t === T.numeric) value = c.double();
    else if (t === T.multi) {
      const listEnd = c.end();
      const values: string[] = [];
      while (c.pos < listEnd) {
        const lt = c.varint();
        if (lt === T.listValue) values.push(c.string());
        else c.skip(lt & 7);
      }
      value = values;
    } else {
      if (t === T.vector) value = undefined;
      c.skip(t & 7);
    }
  }
  return value;
}

/** Reads the Features map into `values`: only the columns the model reads; stored fields already set win. */
function readFeatures(c: Cursor, end: number, columns: ItemColumns, values: RawValue[], fromFields: boolean[]): void {
  while (c.pos < end) {
    const t = c.varint();
    if (t !== T.values) {
      c.skip(t & 7);
      continue;
    }
    const entryEnd = c.end();
    let slot: number | undefined;
    while (c.pos < entryEnd) {
      const et = c.varint();
      if (et === T.mapKey) {
        const keyEnd = c.end();
        slot = columns.slotOf(c.buf, c.pos, keyEnd);
        c.pos = keyEnd;
      } else if (et === T.mapValue && slot !== undefined && !fromFields[slot]) {
        const valueEnd = c.end();
        values[slot] = featureValue(c, valueEnd);
        c.pos = valueEnd;
      } else c.skip(et & 7);
    }
  }
}

/** What readItem leaves beside the values: the Item's created_at_ms (0 when absent) and its item_id. */
interface ItemScratch {
  createdAtMs: number;
  id: string;
}

/** The model's columns of one Item into a row's values; its created_at_ms and item_id into `item`. */
function readItem(c: Cursor, end: number, columns: ItemColumns, item: ItemScratch): RawValue[] {
  item.createdAtMs = 0;
  item.id = '';
  const values = new Array<RawValue>(columns.names.length).fill(undefined);
  // Which slots the Item's own fields filled: they take precedence over a feature of the same name.
  const fromFields = new Array<boolean>(columns.names.length).fill(false);
  let featuresAt = -1;
  let featuresEnd = -1;
  while (c.pos < end) {
    const t = c.varint();
    if (t === T.category) {
      const category = c.string();
      if (category !== '' && columns.categorySlot >= 0) {
        values[columns.categorySlot] = category;
        fromFields[columns.categorySlot] = true;
      }
    } else if (t === T.createdAt) {
      const createdAt = c.int64();
      item.createdAtMs = createdAt > 0 ? createdAt : 0;
      if (createdAt > 0 && columns.createdAtSlot >= 0) {
        values[columns.createdAtSlot] = createdAt;
        fromFields[columns.createdAtSlot] = true;
      }
    } else if (t === T.itemId) {
      item.id = c.string();
    } else if (t === T.features) {
      // Fields may come in any order: features are read after the item's own fields are known.
      featuresEnd = c.end();
      featuresAt = c.pos;
      c.pos = featuresEnd;
    } else c.skip(t & 7);
  }
  if (featuresAt >= 0) {
    const resume = c.pos;
    c.pos = featuresAt;
    readFeatures(c, featuresEnd, columns, values, fromFields);
    c.pos = resume;
  }
  return values;
}

/** Item rows in the order asked, and the ids the feature service did not know (its `missing_ids`). */
export interface ItemColumnRows {
  rows: ItemColumnsRow[];
  missing: string[];
}

/**
 * The rows of a BatchGetItemFeaturesResponse for `itemIds` (the ids asked, in order), read straight from
 * the wire with only the model's item columns: the same values `readItemRows` gives for those columns,
 * without building a protobuf message per item (hundreds per request).
 */
export function decodeItemRows(bytes: Buffer, itemIds: readonly string[], columns: ItemColumns): ItemColumnRows {
  const c = new Cursor(bytes);
  const rows: ItemColumnsRow[] = [];
  const missing: string[] = [];
  // One scratch for every item: readItem leaves the item's created_at_ms here.
  const item: ItemScratch = { createdAtMs: 0, id: '' };
  while (c.pos < bytes.length) {
    const t = c.varint();
    if (t === T.items) {
      const end = c.end();
      const k = rows.length;
      const id = itemIds[k];
      if (id === undefined) throw new RangeError(`the answer holds more than the ${itemIds.length} items asked`);
      let found = false;
      let values: RawValue[] | undefined;
      item.createdAtMs = 0;
      while (c.pos < end) {
        const rt = c.varint();
        if (rt === T.found) found = c.varint() !== 0;
        else if (rt === T.item) {
          const itemEnd = c.end();
          values = readItem(c, itemEnd, columns, item);
          c.pos = itemEnd;
        } else c.skip(rt & 7);
      }
      rows.push(new ItemColumnsRow(id, columns, found ? values : undefined, found, found ? item.createdAtMs : 0));
    } else if (t === T.missingIds) missing.push(c.string());
    else c.skip(t & 7);
  }
  // An answer shorter than the question leaves the rest as unknown items, as readItemRows does.
  for (let k = rows.length; k < itemIds.length; k++) rows.push(new ItemColumnsRow(itemIds[k]!, columns, undefined, false));
  return { rows, missing };
}

/** BatchGetItemFeatures answered as its undecoded bytes (the stage layer's feature client gives them). */
export interface ItemBytesReader {
  batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer>;
}

/**
 * Item rows in the order asked, of only the given columns, decoded straight from one BatchGetItemFeatures
 * answer (proven equal to `readItemRows` for those columns); unknown ids get rows of defaults, `found` false.
 */
export async function readItemColumns(reader: ItemBytesReader, itemIds: string[], columns: ItemColumns): Promise<ItemColumnRows> {
  if (itemIds.length === 0) return { rows: [], missing: [] };
  return decodeItemRows(await reader.batchGetItemFeatureBytes({ itemIds }), itemIds, columns);
}

/** One page of a ScanItems answer: the items (all found) with the model's columns, and the next page's cursor ('' at the end). */
export interface ScannedItems {
  rows: ItemColumnsRow[];
  next: string;
}

/** The rows of a ScanItemsResponse, read straight from the wire with only the model's item columns (as decodeItemRows). */
export function decodeScanPage(bytes: Buffer, columns: ItemColumns): ScannedItems {
  const c = new Cursor(bytes);
  const rows: ItemColumnsRow[] = [];
  let next = '';
  const item: ItemScratch = { createdAtMs: 0, id: '' };
  while (c.pos < bytes.length) {
    const t = c.varint();
    if (t === T.scanItems) {
      const end = c.end();
      const values = readItem(c, end, columns, item);
      c.pos = end;
      rows.push(new ItemColumnsRow(item.id, columns, values, true, item.createdAtMs));
    } else if (t === T.nextCursor) next = c.string();
    else c.skip(t & 7);
  }
  return { rows, next };
}

/** ScanItems answered as its undecoded bytes (the stage layer's feature client gives them). */
export interface ItemScanner {
  scanItemBytes(request: { cursor: string; limit: number }): Promise<Buffer>;
}
