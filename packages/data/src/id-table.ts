import { scratchOf } from './scratch.js';
import { touchRows } from './touch.js';

/**
 * A compact set of string ids, each with its row (the order it was first added): the ids' UTF-8 bytes in one buffer,
 * their offsets in a Uint32Array, and an open-addressing hash table in an Int32Array whose slots hold a row and its id's
 * hash side by side. A million ids of about a dozen characters take ~35 MB here against ~80-100 MB as a million JS
 * strings in an array and a Map. Lookups hash the asked string's UTF-16 code units and probe on while a slot's hash
 * differs (a probe stays in the slot's cache line mostly); the stored id of a slot whose hash matches is compared byte
 * by byte (UTF-8 decoded only for non-ASCII ids).
 */
export class IdTable {
  /** Made by IdTable.from, IdTable.fromJsonArray or an IdTableBuilder. */
  constructor(
    private readonly bytes: Buffer,
    /** Row r's id is bytes[offsets[r], offsets[r + 1]). */
    private readonly offsets: Uint32Array,
    /** Slot s is slots[2s] = row + 1 (0: empty) and slots[2s + 1] = the id's hash; a power of two of slots, at most half full. */
    private readonly slots: Int32Array,
    readonly size: number,
  ) {}

  /** The table of these ids, row k the k-th id; throws a RangeError for a repeated id (rows must match positions). */
  static from(ids: Iterable<string>): IdTable {
    const builder = new IdTableBuilder();
    for (const id of ids) if (builder.add(id) !== builder.size - 1) throw new RangeError(`id "${id}" is repeated`);
    return builder.finish();
  }

  /**
   * The table of the strings of a JSON array (e.g. an index's ids.json) without making a JS string of each: ids without
   * escapes or non-ASCII characters are copied as bytes. Throws a SyntaxError for text that is not an array of strings.
   */
  static fromJsonArray(json: Buffer): IdTable {
    const builder = new IdTableBuilder(Math.max(16, json.length));
    let pos = skipSpace(json, 0);
    if (json[pos] !== 0x5b) throw new SyntaxError('expected a JSON array of strings');
    pos = skipSpace(json, pos + 1);
    if (json[pos] === 0x5d) return expectEnd(json, pos + 1, builder);
    for (;;) {
      if (json[pos] !== 0x22) throw new SyntaxError(`expected a string at byte ${pos}`);
      const start = pos + 1;
      let end = start;
      let plain = true;
      while (end < json.length && json[end] !== 0x22) {
        const b = json[end]!;
        if (b === 0x5c) {
          plain = false;
          end += 2;
          continue;
        }
        if (b < 0x20) throw new SyntaxError(`control character in a string at byte ${end}`);
        if (b >= 0x80) plain = false;
        end++;
      }
      if (end >= json.length) throw new SyntaxError('unterminated string');
      const before = builder.size;
      if (plain) builder.addAsciiBytes(json, start, end);
      else builder.add(JSON.parse(json.toString('utf8', start - 1, end + 1)) as string);
      if (builder.size === before) throw new RangeError(`the id at byte ${start} is repeated (rows must match positions)`);
      pos = skipSpace(json, end + 1);
      if (json[pos] === 0x5d) return expectEnd(json, pos + 1, builder);
      if (json[pos] !== 0x2c) throw new SyntaxError(`expected , or ] at byte ${pos}`);
      pos = skipSpace(json, pos + 1);
    }
  }

  /** The row of `id`, or -1 when the table does not hold it. */
  rowOf(id: string): number {
    const { slots } = this;
    const mask = (slots.length >> 1) - 1;
    const hash = hashString(id);
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = slots[2 * slot]!;
      if (entry === 0) return -1;
      if (slots[2 * slot + 1] === hash && this.holds(entry - 1, id)) return entry - 1;
    }
  }

  /**
   * The row of every id in `ids` (-1 where the table does not hold it) into `rows` (a new array when not given), as
   * rowOf would give them, in passes over all the ids: each id's slot (the first whose hash is the id's), then its
   * stored id's bounds, then the comparison. `ids` are strings, or byte ranges (IdRanges: e.g. the item ids inside a
   * request's bytes, compared byte by byte with the stored ones, no string made but for a rare non-ASCII id).
   * A table of many ids lies outside the caches, and rowOf waits for three reads from memory in turn per id; passes make
   * the reads of different ids independent, so the processor overlaps them (300 ids: 2x faster than rowOf against 50k
   * stored, 2.4-2.6x against 1M; `pnpm bench:id-table`).
   */
  rowsOf(ids: readonly string[] | IdRanges, rows: Int32Array = new Int32Array(ids.length)): Int32Array {
    const n = ids.length;
    if (rows.length < n) throw new RangeError(`rows holds ${rows.length} entries for ${n} ids`);
    let hashes: Int32Array;
    if (!isIdList(ids) && ids.hashes !== undefined) {
      if (ids.hashes.length < n) throw new RangeError(`hashes holds ${ids.hashes.length} entries for ${n} ids`);
      hashes = ids.hashes;
    } else {
      hashes = this.hashes = scratchOf(this.hashes, n);
      if (isIdList(ids)) for (let k = 0; k < n; k++) hashes[k] = hashString(ids[k]!);
      else for (let k = 0; k < n; k++) hashes[k] = hashRange(ids, k);
    }
    this.firstRows(hashes, rows, n);
    const { offsets, bytes, starts } = this;
    if (isIdList(ids)) {
      for (let k = 0; k < n; k++) {
        const row = rows[k]!;
        if (row < 0) continue;
        const id = ids[k]!;
        const start = starts[k]!;
        let same = offsets[row + 1]! - start === id.length;
        for (let j = 0; same && j < id.length; j++) same = bytes[start + j] === id.charCodeAt(j);
        // Another id with the same hash, or a non-ASCII id: rowOf probes on.
        if (!same) rows[k] = this.rowOf(id);
      }
      return rows;
    }
    const { bytes: source, bounds } = ids;
    for (let k = 0; k < n; k++) {
      const row = rows[k]!;
      if (row < 0) continue;
      const from = bounds[2 * k]!;
      const length = bounds[2 * k + 1]! - from;
      const start = starts[k]!;
      let same = offsets[row + 1]! - start === length;
      for (let j = 0; same && j < length; j++) same = bytes[start + j] === source[from + j];
      // Another id with the same hash, or bytes that are not the UTF-8 the table keeps (a malformed sequence): the string.
      if (!same) rows[k] = this.rowOf(ids.id(k));
    }
    return rows;
  }

  /**
   * rowsOf's passes up to the comparison: every id's first slot read ahead (rows holds the slot meanwhile: a loop of
   * independent reads, whose misses the processor overlaps, where a probe loop would wait for each id's in turn), then
   * the first slot with the id's hash (its row, or -1 where an empty slot comes first: not held), then each such row's
   * id read ahead, its start left in `starts`.
   */
  private firstRows(hashes: Int32Array, rows: Int32Array, n: number): void {
    const { slots, offsets, bytes } = this;
    const mask = (slots.length >> 1) - 1;
    for (let k = 0; k < n; k++) rows[k] = hashes[k]! & mask;
    touchRows(slots, rows, 2, n);
    for (let k = 0; k < n; k++) {
      const hash = hashes[k]!;
      let slot = rows[k]!;
      while (slots[2 * slot] !== 0 && slots[2 * slot + 1] !== hash) slot = (slot + 1) & mask;
      rows[k] = slots[2 * slot]! - 1;
    }
    const starts = (this.starts = scratchOf(this.starts, n));
    for (let k = 0; k < n; k++) {
      const row = rows[k]!;
      starts[k] = row < 0 ? 0 : offsets[row]!;
    }
    touchRows(bytes, starts, 1, n);
  }

  /** The ids' starts and hashes of a lookup, kept between calls (lookups are synchronous). */
  private starts: Uint32Array = new Uint32Array(0);
  private hashes: Int32Array = new Int32Array(0);

  has(id: string): boolean {
    return this.rowOf(id) >= 0;
  }

  /** The id of a row (0 <= row < size). */
  idAt(row: number): string {
    if (!(row >= 0 && row < this.size)) throw new RangeError(`row ${row} is outside 0..${this.size - 1}`);
    const start = this.offsets[row]!;
    const end = this.offsets[row + 1]!;
    const bytes = this.bytes;
    // Ids are short and mostly ASCII: building them here beats a native call per string.
    if (end - start <= 64) {
      let text = '';
      for (let k = start; k < end; k++) {
        const b = bytes[k]!;
        if (b >= 0x80) return bytes.toString('utf8', start, end);
        text += String.fromCharCode(b);
      }
      return text;
    }
    return bytes.toString('utf8', start, end);
  }

  /**
   * The ids of `rows[0..count)` (each 0 <= row < size), as idAt gives them, in passes: every row's bounds, then the first
   * byte of every id (so the memory reads of different rows overlap instead of waiting one after another: a table of
   * many ids lies outside the caches; see rowsOf), then every id's bytes gathered into one buffer, decoded in one call
   * and cut into the ids (a string built a character at a time is a dozen strings on the way; an id that is not ASCII
   * is decoded on its own).
   */
  idsAt(rows: ArrayLike<number>, count: number = rows.length): string[] {
    const { offsets, bytes } = this;
    for (let k = 0; k < count; k++) {
      const row = rows[k]!;
      if (!(row >= 0 && row < this.size)) throw new RangeError(`row ${row} is outside 0..${this.size - 1}`);
    }
    const starts = (this.starts = scratchOf(this.starts, count + 1));
    for (let k = 0; k < count; k++) starts[k] = offsets[rows[k]!]!;
    touchRows(bytes, starts, 1, count);
    // Each id's bytes at gathered[starts[k], starts[k + 1]) (starts reused: a row's start is read before it is replaced).
    let total = 0;
    for (let k = 0; k < count; k++) total += offsets[rows[k]! + 1]! - starts[k]!;
    if (this.gathered.length < total) this.gathered = Buffer.allocUnsafe(Math.max(total, 2 * this.gathered.length));
    const gathered = this.gathered;
    let ascii = true;
    let pos = 0;
    for (let k = 0; k < count; k++) {
      const from = starts[k]!;
      const end = offsets[rows[k]! + 1]!;
      starts[k] = pos;
      for (let j = from; j < end; j++) {
        const b = bytes[j]!;
        if (b >= 0x80) ascii = false;
        gathered[pos++] = b;
      }
    }
    starts[count] = pos;
    const text = gathered.toString('latin1', 0, pos);
    const ids = new Array<string>(count);
    for (let k = 0; k < count; k++) ids[k] = text.substring(starts[k]!, starts[k + 1]!);
    if (!ascii) {
      for (let k = 0; k < count; k++) {
        for (let j = starts[k]!; j < starts[k + 1]!; j++) {
          if (gathered[j]! >= 0x80) {
            ids[k] = gathered.toString('utf8', starts[k]!, starts[k + 1]!);
            break;
          }
        }
      }
    }
    return ids;
  }

  /** idsAt's buffer of the ids' bytes, kept between calls (a lookup is synchronous). */
  private gathered: Buffer = Buffer.allocUnsafe(0);

  /** Every id, in row order (a JS string each: for tests and small tables). */
  toArray(): string[] {
    return Array.from({ length: this.size }, (_, row) => this.idAt(row));
  }

  /** Bytes held: the ids, their offsets and the hash slots (rows and hashes). */
  get byteLength(): number {
    return this.bytes.length + this.offsets.byteLength + this.slots.byteLength;
  }

  private holds(row: number, id: string): boolean {
    const start = this.offsets[row]!;
    const end = this.offsets[row + 1]!;
    const bytes = this.bytes;
    if (end - start === id.length) {
      let k = 0;
      while (k < id.length && bytes[start + k]! < 0x80 && id.charCodeAt(k) === bytes[start + k]) k++;
      if (k === id.length) return true;
      if (bytes[start + k]! < 0x80 && id.charCodeAt(k) < 0x80) return false;
    }
    // Non-ASCII: equal only if the UTF-8 bytes are.
    return end - start >= id.length && bytes.toString('utf8', start, end) === id;
  }
}

/** Builds an IdTable one id at a time (rows in the order first added), e.g. from a stream of pages. */
export class IdTableBuilder {
  private bytes: Buffer;
  private used = 0;
  private offsets = new Uint32Array(1024);
  /** As IdTable's: slot s is [row + 1, hash] at 2s. */
  private slots = new Int32Array(2 * 2048);
  private count = 0;

  constructor(initialBytes = 16 * 1024) {
    this.bytes = Buffer.allocUnsafe(initialBytes);
  }

  get size(): number {
    return this.count;
  }

  /** The row of `id`, or -1 when not added. */
  rowOf(id: string): number {
    return this.find(hashString(id), id);
  }

  /** The row of `id`: its existing row, or a new one. */
  add(id: string): number {
    const hash = hashString(id);
    const existing = this.find(hash, id);
    if (existing >= 0) return existing;
    const length = Buffer.byteLength(id, 'utf8');
    this.reserve(length);
    this.bytes.write(id, this.used, 'utf8');
    return this.append(hash, length);
  }

  /** add() of the ASCII id in source[start, end) (every byte below 0x80), without making a string of it. */
  addAsciiBytes(source: Buffer, start: number, end: number): number {
    let hash = FNV_OFFSET;
    for (let k = start; k < end; k++) hash = Math.imul(hash ^ source[k]!, FNV_PRIME);
    hash |= 0;
    const length = end - start;
    const mask = (this.slots.length >> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[2 * slot]!;
      if (entry === 0) break;
      if (this.slots[2 * slot + 1] !== hash) continue;
      const row = entry - 1;
      const from = this.offsets[row]!;
      if (this.offsets[row + 1]! - from === length && this.bytes.compare(source, start, end, from, from + length) === 0) return row;
    }
    this.reserve(length);
    source.copy(this.bytes, this.used, start, end);
    return this.append(hash, length);
  }

  finish(): IdTable {
    const offsets = this.offsets.slice(0, this.count + 1);
    // The hash slots stay as they are (at most half full); the id bytes shrink to what is used.
    return new IdTable(Buffer.from(this.bytes.subarray(0, this.used)), offsets, this.slots, this.count);
  }

  private find(hash: number, id: string): number {
    const mask = (this.slots.length >> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[2 * slot]!;
      if (entry === 0) return -1;
      if (this.slots[2 * slot + 1] !== hash) continue;
      const row = entry - 1;
      const from = this.offsets[row]!;
      const to = this.offsets[row + 1]!;
      if (to - from === Buffer.byteLength(id, 'utf8') && this.bytes.toString('utf8', from, to) === id) return row;
    }
  }

  private reserve(length: number): void {
    if (this.used + length > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + length));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    if (this.count + 2 > this.offsets.length) {
      const grown = new Uint32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    if (2 * (this.count + 1) > this.slots.length >> 1) this.rehash(this.slots.length);
  }

  private append(hash: number, length: number): number {
    const row = this.count++;
    this.used += length;
    this.offsets[row + 1] = this.used;
    this.place(hash, row);
    return row;
  }

  private place(hash: number, row: number): void {
    const mask = (this.slots.length >> 1) - 1;
    let slot = hash & mask;
    while (this.slots[2 * slot] !== 0) slot = (slot + 1) & mask;
    this.slots[2 * slot] = row + 1;
    this.slots[2 * slot + 1] = hash;
  }

  /** Twice the slots: each row placed again by the hash its slot kept. */
  private rehash(slotCount: number): void {
    const old = this.slots;
    this.slots = new Int32Array(2 * slotCount);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0) this.place(old[i + 1]!, old[i]! - 1);
  }
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Ids as UTF-8 byte ranges of one buffer, e.g. the item ids inside a request's bytes: id k is
 * bytes[bounds[2k], bounds[2k + 1]). Looked up without a JS string each (IdTable.rowsOf).
 */
export interface IdRanges {
  readonly length: number;
  readonly bytes: Uint8Array;
  readonly bounds: Int32Array;
  /**
   * Each id's hash as the table keeps it (FNV-1a over the id's UTF-16 code units, as a signed 32-bit value: over its
   * bytes for an ASCII id), where the caller has them (a check that read every byte already).
   */
  readonly hashes?: Int32Array;
  /** Id k as a string (for the few a caller needs as one: a miss, a log line). */
  id(k: number): string;
}

/** Id k's hash as the table keeps it: from its bytes when they are ASCII (nearly always), else from its string. */
function hashRange(ids: IdRanges, k: number): number {
  const { bytes, bounds } = ids;
  let hash = FNV_OFFSET;
  for (let j = bounds[2 * k]!, end = bounds[2 * k + 1]!; j < end; j++) {
    const b = bytes[j]!;
    if (b >= 0x80) return hashString(ids.id(k));
    hash = Math.imul(hash ^ b, FNV_PRIME);
  }
  return hash | 0;
}

function isIdList(ids: readonly string[] | IdRanges): ids is readonly string[] {
  return Array.isArray(ids);
}

/** Id k of a list of ids or of ranges, as a string. */
export function idOf(ids: readonly string[] | IdRanges, k: number): string {
  return isIdList(ids) ? ids[k]! : ids.id(k);
}

/** FNV-1a over UTF-16 code units (for an ASCII id, the same as over its bytes), as a signed 32-bit value (as slots keep it). */
function hashString(id: string): number {
  let hash = FNV_OFFSET;
  for (let k = 0; k < id.length; k++) hash = Math.imul(hash ^ id.charCodeAt(k), FNV_PRIME);
  return hash | 0;
}

function skipSpace(json: Buffer, pos: number): number {
  while (pos < json.length && (json[pos] === 0x20 || json[pos] === 0x0a || json[pos] === 0x0d || json[pos] === 0x09)) pos++;
  return pos;
}

function expectEnd(json: Buffer, pos: number, builder: IdTableBuilder): IdTable {
  if (skipSpace(json, pos) !== json.length) throw new SyntaxError(`unexpected text after the array at byte ${pos}`);
  return builder.finish();
}
