import { type IdRanges, IdTable, IdTableBuilder } from './id-table.js';

/** The ids as UTF-8 ranges of one buffer, with a gap byte between them (as ids lie inside a request's bytes). */
function rangesOf(ids: readonly (string | Uint8Array)[], hashes?: (id: string) => number): IdRanges {
  const parts = ids.map((id) => (typeof id === 'string' ? Buffer.from(id, 'utf8') : id));
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length + 1, 0)).fill(0x7c);
  const bounds = new Int32Array(2 * parts.length);
  let pos = 0;
  parts.forEach((part, k) => {
    bytes.set(part, ++pos);
    bounds[2 * k] = pos;
    bounds[2 * k + 1] = pos += part.length;
  });
  const id = (k: number) => Buffer.from(bytes.subarray(bounds[2 * k]!, bounds[2 * k + 1]!)).toString('utf8');
  return { length: parts.length, bytes, bounds, id, ...(hashes && { hashes: Int32Array.from(parts, (_, k) => hashes(id(k))) }) };
}

describe('IdTable', () => {
  const ids = [
    'item-1',
    'item-22',
    '',
    'ünïcødé',
    'emoji-😀',
    'a"quote',
    'back\\slash',
    ...Array.from({ length: 5000 }, (_, k) => `i${k}`),
  ];

  it('round-trips ids and rows, and answers -1 for ids it does not hold', () => {
    const table = IdTable.from(ids);
    expect(table.size).toBe(ids.length);
    ids.forEach((id, row) => {
      expect(table.rowOf(id)).toBe(row);
      expect(table.idAt(row)).toBe(id);
    });
    for (const other of ['item-2', 'item-222', 'ünïcødè', 'i5000', ' ', 'emoji-😁']) expect(table.rowOf(other)).toBe(-1);
    expect(table.toArray()).toEqual(ids);
    expect(() => table.idAt(ids.length)).toThrow(RangeError);
    expect(() => IdTable.from(['a', 'b', 'a'])).toThrow('id "a" is repeated');
  });

  it('looks up many ids at once as rowOf does one by one: collisions, non-ASCII, absent and repeated ids', () => {
    const table = IdTable.from(ids);
    const asked = [...ids, 'item-2', 'ünïcødè', 'i5000', ' ', 'emoji-😁', 'i7', 'i7', ...ids.slice(0, 50).reverse()];
    const rows = table.rowsOf(asked);
    expect(Array.from(rows)).toEqual(asked.map((id) => table.rowOf(id)));
    // 5,007 ids in 16,384 slots: some ids are not in their first slot, and those are found too.
    const mask = 16_383;
    const moved = ids.filter(
      (id, row) => table.rowOf(id) === row && !/[^\x00-\x7f]/.test(id) && firstSlot(id, mask) !== slotOf(table, row),
    );
    expect(moved.length).toBeGreaterThan(100);
    // Into a given array (longer than needed), reused; one too short is refused.
    const into = new Int32Array(10).fill(99);
    expect(Array.from(table.rowsOf(['i1', 'nope', 'item-1'], into).subarray(0, 4))).toEqual([8, -1, 0, 99]);
    expect(() => table.rowsOf(['i1', 'i2'], new Int32Array(1))).toThrow(RangeError);
    expect(table.rowsOf([])).toEqual(new Int32Array(0));
  });

  it('looks up ids given as byte ranges as their strings, with or without their hashes', () => {
    const table = IdTable.from(ids);
    const asked = [...ids.slice(0, 60), 'item-2', 'ünïcødè', 'i5000', ' ', 'emoji-😁', 'i7', 'i7', 'ünïcødé'];
    const expected = asked.map((id) => table.rowOf(id));
    expect(Array.from(table.rowsOf(rangesOf(asked)))).toEqual(expected);
    expect(Array.from(table.rowsOf(rangesOf(asked, fnv)))).toEqual(expected);
    // A malformed UTF-8 sequence is the id its string is (U+FFFD), as a stage that decoded it looked it up.
    const replaced = IdTable.from(['ok', 'bad-\ufffd']);
    const malformed = Uint8Array.of(0x62, 0x61, 0x64, 0x2d, 0xff);
    expect(Array.from(replaced.rowsOf(rangesOf(['ok', malformed, 'bad-'])))).toEqual([0, 1, -1]);
    expect(Array.from(replaced.rowsOf(rangesOf(['ok', malformed, 'bad-'], fnv)))).toEqual([0, 1, -1]);
    // Colliding hashes, of ids of one length too, told apart by the bytes.
    for (const [a, b] of [
      ['c693596', 'c1170850'],
      ['c1062789', 'c1279192'],
    ] as const) {
      expect(fnv(a)).toBe(fnv(b));
      const pair = IdTable.from(['x', a, 'y']);
      expect(Array.from(pair.rowsOf(rangesOf([b, a, 'z'], fnv)))).toEqual([-1, 1, -1]);
      expect(Array.from(pair.rowsOf(rangesOf([b, a, 'z'])))).toEqual([-1, 1, -1]);
      expect(Array.from(pair.rowsOf([b, a, 'z']))).toEqual([-1, 1, -1]);
    }
    expect(() => table.rowsOf({ ...rangesOf(['i1', 'i2']), hashes: new Int32Array(1) })).toThrow(RangeError);
  });

  it('tells apart ids whose hashes are equal, one by one and in passes', () => {
    // Two ids with the same 32-bit FNV-1a hash (the first pair among c0, c1, ...).
    const [a, b] = ['c693596', 'c1170850'];
    expect(fnv(a)).toBe(fnv(b));
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const table = IdTable.from(['x', ...order, 'y']);
      expect([table.rowOf(order[0]!), table.rowOf(order[1]!)]).toEqual([1, 2]);
      expect(Array.from(table.rowsOf([order[1]!, order[0]!, 'z']))).toEqual([2, 1, -1]);
    }
    // Held once, the other is not there.
    const one = IdTable.from([a]);
    expect(Array.from(one.rowsOf([b, a]))).toEqual([-1, 0]);
    expect(one.rowOf(b)).toBe(-1);
  });

  it('gives the ids of many rows at once as idAt does one by one, and refuses a row outside the table', () => {
    const table = IdTable.from(ids);
    const rows = [3, 0, 2, 4, 4, 5006, 6, 1000, 5];
    expect(table.idsAt(rows)).toEqual(rows.map((row) => table.idAt(row)));
    expect(table.idsAt(Int32Array.from(rows), 3)).toEqual(['ünïcødé', 'item-1', '']);
    expect(table.idsAt([])).toEqual([]);
    expect(() => table.idsAt([1, ids.length])).toThrow(RangeError);
    expect(() => table.idsAt([-1])).toThrow(RangeError);
  });

  it('reads a JSON array of strings as bytes, escapes and non-ASCII included', () => {
    const table = IdTable.fromJsonArray(Buffer.from(` ${JSON.stringify(ids)}\n`));
    expect(table.toArray()).toEqual(ids);
    ids.forEach((id, row) => expect(table.rowOf(id)).toBe(row));
    expect(IdTable.fromJsonArray(Buffer.from('[]')).size).toBe(0);
    expect(IdTable.fromJsonArray(Buffer.from('[ "a" , "\\u0062" ]')).toArray()).toEqual(['a', 'b']);
    for (const bad of ['{}', '["a",]', '["a"', '["a"] x', '[1]', '["a","a"]'])
      expect(() => IdTable.fromJsonArray(Buffer.from(bad))).toThrow();
  });

  it('keeps the first row of an id added again (a builder fed pages that may repeat)', () => {
    const builder = new IdTableBuilder(4);
    expect(builder.add('x')).toBe(0);
    expect(builder.addAsciiBytes(Buffer.from('..y..'), 2, 3)).toBe(1);
    expect(builder.add('y')).toBe(1);
    expect(builder.addAsciiBytes(Buffer.from('x'), 0, 1)).toBe(0);
    expect(builder.add('z')).toBe(2);
    const table = builder.finish();
    expect(table.toArray()).toEqual(['x', 'y', 'z']);
  });

  it('holds ids in a few bytes each beyond their text', () => {
    const n = 200_000;
    const table = IdTable.from(Array.from({ length: n }, (_, k) => `item-${k}`));
    // ~10.9 bytes of text, 4 of offset and at most 32 of hash slots (a row and a hash each) per id.
    expect(table.byteLength).toBeLessThan(47 * n);
    expect(table.rowOf('item-199999')).toBe(199_999);
    expect(table.idAt(123_456)).toBe('item-123456');
  });
});

/** FNV-1a of an ASCII id, as the table hashes. */
function fnv(id: string): number {
  let hash = 0x811c9dc5;
  for (let k = 0; k < id.length; k++) hash = Math.imul(hash ^ id.charCodeAt(k), 0x01000193);
  return hash >>> 0;
}

/** The first slot an ASCII id hashes to. */
function firstSlot(id: string, mask: number): number {
  return fnv(id) & mask;
}

/** The slot that holds a row (read from the table's slots: [row + 1, hash] each). */
function slotOf(table: IdTable, row: number): number {
  const { slots } = table as unknown as { slots: Int32Array };
  for (let slot = 0; 2 * slot < slots.length; slot++) if (slots[2 * slot] === row + 1) return slot;
  return -1;
}
