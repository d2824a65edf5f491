import { type IdRanges, type IdTable, IdTableBuilder, idOf, scratchOf, touchRows } from '@recsys/data';
import { errorMessage } from './error-message.js';
import type { FeedAssembler, ItemBatch } from './feeds.js';
import type { EncodedItemReader } from './item-cache.js';
import { type ItemBytesReader, type ItemScanner, decodeScanPage } from './item-rows-wire.js';

export interface ItemTableSettings {
  /** Items the table holds at most (the rest are read through the item cache); 0: no table. */
  maxItems: number;
  /** How often the table is read again, so that changed items are seen (after at most this); 0: never. */
  refreshMs: number;
}

/** Up to 10M items (about 30-60 bytes each: a 1M catalogue in ~50 MB per model), read again every 10 minutes. */
export const ITEM_TABLE_DEFAULTS: Readonly<ItemTableSettings> = { maxItems: 10_000_000, refreshMs: 600_000 };

/** After a failed read (the feature service down at load), the next try. */
export const ITEM_TABLE_RETRY_MS = 30_000;

/** Items asked per ScanItems page: small enough that a page answers quickly on a busy Redis. */
export const ITEM_TABLE_PAGE = 2000;

/** Tries per page: a page that fails (a Redis timeout under load) is asked again before the whole read fails. */
const PAGE_ATTEMPTS = 3;

async function scanPage(scanner: ItemScanner, cursor: string): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await scanner.scanItemBytes({ cursor, limit: ITEM_TABLE_PAGE });
    } catch (error) {
      if (attempt >= PAGE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}

/** A candidate's linked row (CandidateItems.read) when the item table does not hold it: the caller looks it up. */
export const LINK_UNKNOWN = -2;

/**
 * Every stored item's features encoded for one model version, one record per row in one buffer: row r's record is
 * the `stride` 32-bit words at r * stride, holding its created_at_ms (a float64, the first two words), its codes
 * (codeWidth), its continuous values (valueWidth, float32 as the model reads them) and, with a linked IdTable (another
 * per-item table of the model, e.g. the pre-ranker's two-tower vectors), its item's row there (-1: not there), so one
 * id lookup per candidate serves both. Rows by id in an IdTable. One record per row: a candidate's row is one or two
 * cache lines rather than one in each of four arrays (1,200 rows of a 1M table read ~2.7x faster). Read only once built.
 */
export class ItemTable {
  /** The records as 32-bit integers (codes, linked rows), floats (values) and float64s (creation times). */
  private readonly words: Int32Array;
  private readonly floats: Float32Array;
  private readonly times: Float64Array;
  /** Where each part of a record lies, in words from its start, and the words per record. */
  private readonly layout: RecordLayout;

  private constructor(
    readonly ids: IdTable,
    records: ArrayBuffer,
    readonly codeWidth: number,
    readonly valueWidth: number,
    /** Whether records hold a linked row. */
    readonly linked: boolean,
  ) {
    this.words = new Int32Array(records);
    this.floats = new Float32Array(records);
    this.times = new Float64Array(records);
    this.layout = recordLayout(codeWidth, valueWidth, linked);
    if (this.words.length !== ids.size * this.stride) throw new RangeError(`${this.words.length} words for ${ids.size} records`);
  }

  /** Words per record: the creation time's two, the codes, the values and the linked row, made even (float64s align). */
  get stride(): number {
    return this.layout.stride;
  }

  get size(): number {
    return this.ids.size;
  }

  /** Bytes held (ids and records). */
  get byteLength(): number {
    return this.ids.byteLength + this.words.byteLength;
  }

  /** Row r's codes (a view). */
  codesOf(row: number): Int32Array {
    const at = row * this.stride + this.layout.codes;
    return this.words.subarray(at, at + this.codeWidth);
  }

  /** Row r's continuous values (a view). */
  valuesOf(row: number): Float32Array {
    const at = row * this.stride + this.layout.values;
    return this.floats.subarray(at, at + this.valueWidth);
  }

  /** Row r's created_at_ms. */
  createdAtOf(row: number): number {
    return this.times[(row * this.stride) >> 1]!;
  }

  /** Row r's item's row in the linked table (-1: not there); undefined without one. */
  linkedRowOf(row: number): number | undefined {
    return this.linked ? this.words[row * this.stride + this.layout.link]! : undefined;
  }

  /**
   * Copies rows[k] (k < n; a negative row skipped) into item k of the batch, its creation time into createdAtMs[k]
   * and, with links, its linked row into linked[k]. Every record read ahead first (their reads overlap: touchRows).
   */
  copyRows(rows: Int32Array, n: number, batch: ItemBatch, createdAtMs: Float64Array, linked: Int32Array | undefined): void {
    const { words, floats, times } = this;
    const { stride, codes, values, link } = this.layout;
    touchRows(words, rows, stride, n);
    for (let k = 0; k < n; k++) {
      const row = rows[k]!;
      if (row < 0) continue;
      const base = row * stride;
      batch.setRecord(k, words, floats, base + codes, base + values);
      createdAtMs[k] = times[base >> 1]!;
      if (linked !== undefined) linked[k] = words[base + link]!;
    }
  }

  /**
   * Reads every stored item (ScanItems, ITEM_TABLE_PAGE items a page, as bytes; a failed page is asked again twice) and
   * encodes it with the assembler; at most `maxItems` (the first the scan gives). An item a scan returns twice keeps its
   * last values. Each item's row in `link` is looked up as its page is read (linkedRowOf).
   */
  static async load(scanner: ItemScanner, assembler: FeedAssembler, maxItems: number, link?: IdTable): Promise<ItemTable> {
    const cw = assembler.codeWidth;
    const vw = assembler.valueWidth;
    const layout = recordLayout(cw, vw, link !== undefined);
    const { stride } = layout;
    const ids = new IdTableBuilder(1 << 20);
    let capacity = 1 << 14;
    let records = new ArrayBuffer(capacity * stride * 4);
    let words = new Int32Array(records);
    let floats = new Float32Array(records);
    let times = new Float64Array(records);
    let cursor = '';
    do {
      const page = decodeScanPage(await scanPage(scanner, cursor), assembler.itemColumns);
      for (const row of page.rows) {
        if (ids.size >= maxItems && ids.rowOf(row.id) < 0) continue;
        const r = ids.add(row.id);
        if (r >= capacity) {
          capacity *= 2;
          const grown = new ArrayBuffer(capacity * stride * 4);
          new Int32Array(grown).set(words);
          records = grown;
          words = new Int32Array(records);
          floats = new Float32Array(records);
          times = new Float64Array(records);
        }
        const encoded = assembler.encodeItem(row);
        const base = r * stride;
        times[base >> 1] = row.createdAtMs;
        for (let j = 0; j < cw; j++) words[base + layout.codes + j] = encoded[j]!;
        for (let j = 0; j < vw; j++) floats[base + layout.values + j] = encoded[cw + j]!;
        if (link !== undefined) words[base + layout.link] = link.rowOf(row.id);
      }
      cursor = page.next;
    } while (cursor !== '');
    return new ItemTable(ids.finish(), records.slice(0, ids.size * stride * 4), cw, vw, link !== undefined);
  }
}

/** An item-table record's parts, in 32-bit words from its start (the creation time, a float64, takes words 0 and 1). */
interface RecordLayout {
  codes: number;
  values: number;
  /** The linked row's word (only where records hold one). */
  link: number;
  /** Words per record, made even so that every record's creation time is aligned for a Float64Array. */
  stride: number;
}

function recordLayout(codeWidth: number, valueWidth: number, linked: boolean): RecordLayout {
  const codes = 2;
  const values = codes + codeWidth;
  const link = values + valueWidth;
  const words = link + (linked ? 1 : 0);
  return { codes, values, link, stride: words + (words % 2) };
}

export interface ItemTableLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** What the table reports for metrics: candidates served from it, and its size. */
export interface ItemTableObserver {
  itemTableRead(hits: number, size: number): void;
}

export interface LiveItemTableOptions extends ItemTableSettings {
  /** Names the model in log lines ("dlrm v3"). */
  label: string;
  logger?: ItemTableLogger;
  /** Another per-item table of the model whose rows the item table records (ItemTable.linkedRowOf). */
  link?: IdTable;
}

/**
 * One model version's item table, kept fresh: read at load (awaited, so a new version serves with its table from its
 * first request), then again every `refreshMs` and swapped in whole. Should a read fail (the feature service down at
 * load), the version serves through the item cache alone and the table is read again after ITEM_TABLE_RETRY_MS.
 */
export class LiveItemTable {
  private current: ItemTable | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly scanner: ItemScanner,
    private readonly assembler: FeedAssembler,
    private readonly options: LiveItemTableOptions,
  ) {}

  static async start(scanner: ItemScanner, assembler: FeedAssembler, options: LiveItemTableOptions): Promise<LiveItemTable> {
    const live = new LiveItemTable(scanner, assembler, options);
    await live.read();
    return live;
  }

  get table(): ItemTable | undefined {
    return this.current;
  }

  /** Reads the table now (tests; the timer does this every refreshMs). */
  async read(): Promise<void> {
    const { label, logger } = this.options;
    const started = performance.now();
    try {
      const table = await ItemTable.load(this.scanner, this.assembler, this.options.maxItems, this.options.link);
      if (this.closed) return;
      this.current = table;
      logger?.info(
        { model: label, items: table.size, mib: Math.round(table.byteLength / 2 ** 20), ms: Math.round(performance.now() - started) },
        `${label}: item table of ${table.size} items (${(table.byteLength / 2 ** 20).toFixed(1)} MiB) read`,
      );
      this.schedule(this.options.refreshMs);
    } catch (error) {
      if (this.closed) return;
      const problem = errorMessage(error);
      logger?.warn(
        { model: label, err: error },
        `${label}: the item table could not be read (${problem}); ${this.current ? 'the previous one serves' : 'items are read per request'}, ` +
          `trying again in ${ITEM_TABLE_RETRY_MS / 1000} s`,
      );
      this.schedule(ITEM_TABLE_RETRY_MS);
    }
  }

  private schedule(ms: number): void {
    if (this.closed || ms <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.read(), ms);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.current = undefined;
  }
}

/** CandidateItems.read's answer. */
export interface CandidateItemsRead {
  batch: ItemBatch;
  createdAtMs: Float64Array;
  missing: string[];
  /** Each candidate's row in the linked table (see CandidateItems.read); absent without one. */
  linked?: Int32Array;
}

/**
 * The candidates' item features for one model version: rows of its item table copied into the batch, and the items
 * the table does not hold (added after it was read, or beyond its size) read through the item cache, in one
 * BatchGetItemFeatures call for all of them. With a full table a request reads no item at all.
 */
export class CandidateItems {
  constructor(
    private readonly assembler: FeedAssembler,
    private readonly readThrough: EncodedItemReader,
    private readonly live: LiveItemTable | undefined,
    private readonly observer?: Partial<ItemTableObserver>,
  ) {}

  /** The table in use (undefined when off or not read yet). */
  get table(): ItemTable | undefined {
    return this.live?.table;
  }

  /**
   * The candidates' encoded items, each one's created_at_ms (0 when unknown), and the ids the feature service does not
   * know. With a linked table (LiveItemTableOptions.link), `linked` gives each candidate's row there, -1 for an item it
   * does not hold, LINK_UNKNOWN for one the item table does not hold (read through, or no table read yet).
   * `itemIds` may be byte ranges (a request's own bytes): the table's lookup makes no string of them, and only the ids it
   * does not hold become strings (to be read through).
   */
  async read(reader: ItemBytesReader, itemIds: readonly string[] | IdRanges): Promise<CandidateItemsRead> {
    const n = itemIds.length;
    const batch = this.assembler.newBatch(n);
    const table = this.live?.table;
    if (table === undefined) {
      const read = await this.readThrough.read(
        reader,
        Array.from({ length: n }, (_, k) => idOf(itemIds, k)),
      );
      for (let k = 0; k < n; k++) batch.setEncoded(k, read.items[k]!);
      return { batch, createdAtMs: read.createdAtMs, missing: read.missing };
    }
    const createdAtMs = new Float64Array(n);
    const linked = table.linked ? new Int32Array(n) : undefined;
    const rest: string[] = [];
    const positions: number[] = [];
    // All rows first, then their records (rowsOf and copyRows each read ahead: the memory reads of different rows overlap).
    const rows = table.ids.rowsOf(itemIds, (this.rowBuffer = scratchOf(this.rowBuffer, n)));
    table.copyRows(rows, n, batch, createdAtMs, linked);
    for (let k = 0; k < n; k++) {
      if (rows[k]! >= 0) continue;
      rest.push(idOf(itemIds, k));
      positions.push(k);
      if (linked !== undefined) linked[k] = LINK_UNKNOWN;
    }
    this.observer?.itemTableRead?.(n - rest.length, table.size);
    if (rest.length === 0) return { batch, createdAtMs, missing: [], ...(linked && { linked }) };
    const read = await this.readThrough.read(reader, rest);
    for (let j = 0; j < rest.length; j++) {
      batch.setEncoded(positions[j]!, read.items[j]!);
      createdAtMs[positions[j]!] = read.createdAtMs[j]!;
    }
    return { batch, createdAtMs, missing: read.missing, ...(linked && { linked }) };
  }

  /** Scratch rows for one read, kept between reads: each is used before the read's first await. */
  private rowBuffer: Int32Array = new Int32Array(0);

  close(): void {
    this.live?.close();
  }
}
