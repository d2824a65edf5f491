import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetFiles, writeDatasetFiles } from './files.js';
import { generateSynthetic } from './synthetic.js';
import { tableFromRows } from './table.js';
import { type Dataset } from './types.js';

describe('dataset files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recsys-data-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (files: Record<string, string>) => {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  };

  it('round-trips a dataset through users.jsonl, items.csv and interactions.csv', () => {
    const synthetic = generateSynthetic({ seed: 5, users: 60, items: 120, interactionsPerUser: 5 });
    const n = synthetic.interactions.length;
    const users = tableFromRows(
      synthetic.users.ids,
      synthetic.users.ids.map((_, u) => ({
        ...(u % 7 === 0 ? {} : { country: u % 2 ? 'fr' : 'de, "north"' }),
        ...(u % 5 === 0 ? {} : { age: u + 0.25 }),
        likes: u % 3 ? ['a', 'b c'] : [],
      })),
    );
    const dataset: Dataset = {
      ...synthetic,
      name: 'round-trip',
      users,
      interactions: {
        ...synthetic.interactions,
        value: synthetic.interactions.value.map((v, r) => (r % 4 === 0 ? 0.1 : v)),
        context: {
          device: { kind: 'categorical', values: Array.from({ length: n }, (_, r) => (r % 3 ? 'mobile' : '')) },
          position: { kind: 'numeric', values: Float64Array.from({ length: n }, (_, r) => (r % 5 ? r % 10 : NaN)) },
          recent: { kind: 'multi', values: Array.from({ length: n }, (_, r) => (r % 2 ? ['item-1', 'item-2'] : [])) },
        },
      },
    };
    writeDatasetFiles(dataset, dir);
    const loaded = loadDatasetFiles(dir, { name: 'round-trip', positiveThreshold: 1 });
    expect(loaded).toEqual(dataset);
    expect(loadDatasetFiles(dir).name).toBe(dir.split('/').pop());
  });

  it('reads users.csv and items.jsonl with typed columns, ISO dates and missing cells', () => {
    write({
      'users.csv': 'user_id,age:num,country,likes:multi\nu1,31,fr,games|music\nu2,,de,\n',
      'items.jsonl':
        '{"item_id": "i1", "category": "music", "created_at": "2026-02-02T00:00:00Z", "features": {"price": 30.5, "tags": ["a"], "premium": true}}\n\n' +
        '{"item_id": 2, "features": {"price": null}}\n',
      'interactions.csv': 'user_id,item_id,value,timestamp,device\nu1,i1,1,1700000000,mobile\nu2,2,0,2024-01-01T00:00:00Z,\n',
    });
    const data = loadDatasetFiles(dir, { name: 'mixed' });
    expect(data.users.columns.likes).toEqual({ kind: 'multi', values: [['games', 'music'], []] });
    expect(Array.from(data.users.columns.age!.values as Float64Array)).toEqual([31, NaN]);
    expect(data.items.ids).toEqual(['i1', '2']);
    expect(data.items.columns.category).toEqual({ kind: 'categorical', values: ['music', ''] });
    expect(Array.from(data.items.columns.created_at!.values as Float64Array)).toEqual([Date.parse('2026-02-02T00:00:00Z'), NaN]);
    expect(Array.from(data.items.columns.price!.values as Float64Array)).toEqual([30.5, NaN]);
    expect(data.items.columns.premium).toEqual({ kind: 'categorical', values: ['true', ''] });
    expect(data.items.columns.tags).toEqual({ kind: 'multi', values: [['a'], []] });
    expect(Array.from(data.interactions.timestamp)).toEqual([1_700_000_000, Date.parse('2024-01-01T00:00:00Z') / 1000]);
    expect(Array.from(data.interactions.user)).toEqual([0, 1]);
    expect(Array.from(data.interactions.item)).toEqual([0, 1]);
    expect(data.interactions.context.device).toEqual({ kind: 'categorical', values: ['mobile', ''] });
  });

  it('refuses an interaction with an unknown user or item, naming the file and line', () => {
    write({
      'users.jsonl': '{"user_id": "u1"}\n',
      'items.csv': 'item_id,category,created_at\ni1,music,0\n',
      'interactions.csv': 'user_id,item_id,value,timestamp\nu1,i1,1,5\nu1,i9,1,6\n',
    });
    expect(() => loadDatasetFiles(dir)).toThrow('interactions.csv line 3: unknown item_id "i9"');
    write({ 'interactions.csv': 'user_id,item_id,value,timestamp\nu7,i1,1,5\n' });
    expect(() => loadDatasetFiles(dir)).toThrow('interactions.csv line 2: unknown user_id "u7"');
  });

  it('names the file, line and field of bad input', () => {
    const items = 'item_id,category\ni1,music\n';
    const interactions = 'user_id,item_id,value,timestamp\n';
    const cases: [Record<string, string>, string][] = [
      [
        { 'users.jsonl': '{"user_id": "u1", "features": {"age": 3}}\n{"user_id": "u2", "features": {"age": "3"}}\n' },
        'users.jsonl: column "age" mixes numeric and categorical',
      ],
      [{ 'users.jsonl': '{"user_id": "u1"}\n{"user_id": "u1"}\n' }, 'users.jsonl line 2: duplicate user_id "u1" (first on line 1)'],
      [{ 'users.jsonl': '{"user_id": "u1", "features": {"v": [1, 2]}}\n' }, 'users.jsonl line 1: features.v: unsupported value [1,2]'],
      [{ 'users.jsonl': '{"user_id": "u1"\n' }, 'users.jsonl line 1: malformed JSON'],
      [{ 'users.jsonl': '{"features": {}}\n' }, 'users.jsonl line 1: user_id is missing'],
      [{ 'users.csv': 'user_id,age:num\nu1,old\n' }, 'users.csv line 2: age: "old" is not a number'],
      [{ 'users.csv': 'user_id,emb:vec\n' }, 'users.csv: column "emb": vector columns are not supported'],
      [{ 'users.csv': 'id,age\n' }, 'users.csv: the header has no user_id column'],
      [{ 'users.csv': 'user_id,age\nu1\n' }, 'users.csv line 2: expected 2 columns, got 1'],
    ];
    const fresh = () => {
      rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), 'recsys-data-'));
    };
    for (const [files, message] of cases) {
      fresh();
      write({ 'items.csv': items, 'interactions.csv': interactions, ...files });
      expect(() => loadDatasetFiles(dir)).toThrow(message);
    }
    fresh();
    write({ 'items.csv': items, 'users.jsonl': '{"user_id": "u1"}\n', 'interactions.csv': 'user_id,item_id,value\n' });
    expect(() => loadDatasetFiles(dir)).toThrow('interactions.csv: the header lacks timestamp');
    write({ 'interactions.csv': 'user_id,item_id,value,timestamp\nu1,i1,,3\n' });
    expect(() => loadDatasetFiles(dir)).toThrow('interactions.csv line 2: value is missing');
    write({ 'users.csv': 'user_id\nu1\n' });
    expect(() => loadDatasetFiles(dir)).toThrow('both users.jsonl and users.csv exist');
  });
});
