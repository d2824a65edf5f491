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
 * Every stored item's features encoded for one model version, in compact typed arrays: row r's codes at
 * codes[r * codeWidth ...], its continuous values (float32, as the model reads them) at values[r * valueWidth ...],
 * its created_at_ms at createdAtMs[r]; rows by id in an IdTable. With a linked IdTable (another per-item table of the
 * model, e.g. the pre-ranker's two-tower vectors), linkedRows[r] is row r's item's row there (-1: not there), so one
 * id lookup per candidate serves both. Read only once built.
 */
export class ItemTable {
  constructor(
    readonly ids: IdTable,
    readonly codes: Int32Array,
    readonly values: Float32Array,
    readonly createdAtMs: Float64Array,
    readonly codeWidth: number,
    readonly valueWidth: number,
    readonly linkedRows?: Int32Array,
  ) {}

  get size(): number {
    return this.ids.size;
  }

  /** Bytes held (ids, codes, values, creation times, linked rows). */
  get byteLength(): number {
    const linked = this.linkedRows?.byteLength ?? 0;
    return this.ids.byteLength + this.codes.byteLength + this.values.byteLength + this.createdAtMs.byteLength + linked;
  }

  /**
   * Reads every stored item (ScanItems, ITEM_TABLE_PAGE items a page, as bytes; a failed page is asked again twice) and
   * encodes it with the assembler; at most `maxItems` (the first the scan gives). An item a scan returns twice keeps its
   * last values. Each item's row in `link` is looked up as its page is read (linkedRows).
   */
  static async load(scanner: ItemScanner, assembler: FeedAssembler, maxItems: number, link?: IdTable): Promise<ItemTable> {
    const cw = assembler.codeWidth;
    const vw = assembler.valueWidth;
    const ids = new IdTableBuilder(1 << 20);
    let capacity = 1 << 14;
    let codes = new Int32Array(capacity * cw);
    let values = new Float32Array(capacity * vw);
    let createdAtMs = new Float64Array(capacity);
    let linked = link === undefined ? undefined : new Int32Array(capacity);
    let cursor = '';
    do {
      const page = decodeScanPage(await scanPage(scanner, cursor), assembler.itemColumns);
      for (const row of page.rows) {
        if (ids.size >= maxItems && ids.rowOf(row.id) < 0) continue;
        const r = ids.add(row.id);
        if (r >= capacity) {
          capacity *= 2;
          codes = grow(codes, capacity * cw);
          values = grow(values, capacity * vw);
          createdAtMs = grow(createdAtMs, capacity);
          if (linked !== undefined) linked = grow(linked, capacity);
        }
        const encoded = assembler.encodeItem(row);
        for (let j = 0; j < cw; j++) codes[r * cw + j] = encoded[j]!;
        for (let j = 0; j < vw; j++) values[r * vw + j] = encoded[cw + j]!;
        createdAtMs[r] = row.createdAtMs;
        if (linked !== undefined) linked[r] = link!.rowOf(row.id);
      }
      cursor = page.next;
    } while (cursor !== '');
    const n = ids.size;
    return new ItemTable(
      ids.finish(),
      codes.slice(0, n * cw),
      values.slice(0, n * vw),
      createdAtMs.slice(0, n),
      cw,
      vw,
      linked?.slice(0, n),
    );
  }
}

function grow<T extends Int32Array | Float32Array | Float64Array>(array: T, length: number): T {
  const grown = new (array.constructor as new (n: number) => T)(length);
  grown.set(array);
  return grown;
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
  /** Another per-item table of the model whose rows the item table records (ItemTable.linkedRows). */
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
    const { linkedRows } = table;
    const linked = linkedRows === undefined ? undefined : new Int32Array(n);
    const rest: string[] = [];
    const positions: number[] = [];
    const { codes, values, ids } = table;
    // All rows first, then every row's values read ahead: their memory reads overlap (rowsOf, touchRows), then the copies.
    const rows = ids.rowsOf(itemIds, (this.rowBuffer = scratchOf(this.rowBuffer, n)));
    touchRows(codes, rows, table.codeWidth, n);
    touchRows(values, rows, table.valueWidth, n);
    touchRows(table.createdAtMs, rows, 1, n);
    if (linkedRows !== undefined) touchRows(linkedRows, rows, 1, n);
    for (let k = 0; k < n; k++) {
      const row = rows[k]!;
      if (row < 0) {
        rest.push(idOf(itemIds, k));
        positions.push(k);
        if (linked !== undefined) linked[k] = LINK_UNKNOWN;
        continue;
      }
      batch.setRow(k, codes, values, row);
      createdAtMs[k] = table.createdAtMs[row]!;
      if (linked !== undefined) linked[k] = linkedRows![row]!;
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
