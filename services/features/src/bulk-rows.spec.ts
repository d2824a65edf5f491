import { csvColumns, parseCsvRow, parseJsonRow } from './bulk-rows.js';

describe('parseJsonRow', () => {
  it('types features by their JSON type', () => {
    const row = parseJsonRow(
      'users',
      '{"user_id": 7, "features": {"age": 31, "city": "Lyon", "vip": true, "tags": ["a"], "emb": [0.5, 1], "gone": null}}',
      1,
    );
    expect(row.ok).toBe(true);
    if (!row.ok) return;
    expect(row.value).toMatchObject({ userId: '7' });
    const values = row.value.features!.values;
    expect(values.age!.kind).toEqual({ case: 'numeric', value: 31 });
    expect(values.city!.kind).toEqual({ case: 'categorical', value: 'Lyon' });
    expect(values.vip!.kind).toEqual({ case: 'categorical', value: 'true' });
    expect(values.tags!.kind.value).toMatchObject({ values: ['a'] });
    expect(values.emb!.kind.value).toMatchObject({ values: [0.5, 1] });
    expect(values.gone).toBeUndefined();
  });

  it('reads an item’s category and created_at as ms or ISO date', () => {
    const iso = parseJsonRow('items', '{"item_id": "i", "category": "books", "created_at": "2026-01-01T00:00:00Z"}', 1);
    const ms = parseJsonRow('items', '{"item_id": "i", "created_at": 1700000000000}', 2);
    expect(iso.ok && iso.value).toMatchObject({ category: 'books', createdAtMs: BigInt(Date.parse('2026-01-01T00:00:00Z')) });
    expect(ms.ok && ms.value).toMatchObject({ createdAtMs: 1700000000000n });
  });

  it.each([
    ['{oops', 'malformed JSON'],
    ['[1, 2]', 'a row must be a JSON object'],
    ['{"features": {}}', 'user_id: missing'],
    ['{"user_id": "u", "features": []}', 'features: must be an object'],
    ['{"user_id": "u", "features": {"mix": [1, "a"]}}', 'features.mix: an array must hold only strings or only finite numbers'],
    ['{"user_id": "u", "features": {"o": {"a": 1}}}', 'features.o: unsupported value'],
  ])('rejects %s with a reason', (text, reason) => {
    const row = parseJsonRow('users', text, 4);
    expect(row).toMatchObject({ ok: false, line: 4 });
    expect(!row.ok && row.reason).toContain(reason);
  });

  it('rejects a bad created_at', () => {
    const row = parseJsonRow('items', '{"item_id": "i", "created_at": "yesterday"}', 1);
    expect(!row.ok && row.reason).toContain('created_at: "yesterday" is neither Unix ms nor an ISO date');
  });

  it('rejects a created_at no Date holds, before 1970 or past 275,760 AD, as a number, digits or a date', () => {
    for (const value of ['-1', '8640000000000001', '"99999999999999999999"', '"1960-01-01T00:00:00Z"', '1.5']) {
      const row = parseJsonRow('items', `{"item_id": "i", "created_at": ${value}}`, 1);
      expect([value, !row.ok && row.reason]).toEqual([
        value,
        'created_at: must be Unix milliseconds from 0 to 8640000000000000 (0 means unknown / now)',
      ]);
    }
  });
});

describe('CSV rows', () => {
  const columns = csvColumns('items', ['item_id', 'category', 'created_at', 'price:num', 'tags:multi', 'emb:vec', 'brand']);

  it('types cells by the column suffix and skips empty cells', () => {
    const row = parseCsvRow('items', columns, ['i1', 'books', '1700000000000', '9.5', 'a|b', '0.5|2', ''], 1);
    expect(row.ok).toBe(true);
    if (!row.ok) return;
    expect(row.value).toMatchObject({ itemId: 'i1', category: 'books', createdAtMs: 1700000000000n });
    const values = row.value.features!.values;
    expect(values.price!.kind).toEqual({ case: 'numeric', value: 9.5 });
    expect(values.tags!.kind.value).toMatchObject({ values: ['a', 'b'] });
    expect(values.emb!.kind.value).toMatchObject({ values: [0.5, 2] });
    expect(values.brand).toBeUndefined();
  });

  it.each([
    [['i1', 'b', '', 'cheap', '', '', ''], 'price: "cheap" is not a number'],
    [['i1', 'b', '', '', '', '1|x', ''], 'emb: "1|x" is not a |-separated list of numbers'],
    [['', 'b', '', '', '', '', ''], 'item_id: missing'],
    [['i1', 'b'], 'expected 7 columns, got 2'],
  ])('rejects %j', (cells, reason) => {
    const row = parseCsvRow('items', columns, cells, 3);
    expect(!row.ok && row.reason).toBe(reason);
  });

  it('refuses a header without the id column or with an unknown type', () => {
    expect(() => csvColumns('users', ['id', 'age'])).toThrow('the CSV header has no user_id column');
    const odd = csvColumns('users', ['user_id', 'x:weird']);
    expect(parseCsvRow('users', odd, ['u', '1'], 1)).toMatchObject({
      ok: false,
      reason: 'x: unknown column type "weird" (use cat, num, multi or vec)',
    });
  });
});
