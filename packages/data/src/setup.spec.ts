import { encodeTable } from './encode.js';
import { fingerprint } from './fingerprint.js';
import { protocolIsTrain } from './hash.js';
import { buildTrainingSetup } from './setup.js';
import { generateSynthetic } from './synthetic.js';
import { tableFromRows } from './table.js';
import { type Dataset } from './types.js';

function tiny(): Dataset {
  const users = tableFromRows(
    ['u2', 'u1', 'u3'],
    [
      { country: 'fr', age: 20, category: 'x' },
      { country: 'de', age: 40, category: 'y' },
      { country: '', category: 'y' },
    ],
  );
  const items = tableFromRows(
    ['b', 'a'],
    [
      { category: 'music', tags: ['x', 'y', 'z'], price: 10, created_at: 1 },
      { category: 'games', tags: ['y'], price: 30, created_at: 2 },
    ],
  );
  const n = 12;
  return {
    name: 'tiny',
    users,
    items,
    interactions: {
      length: n,
      user: Int32Array.from({ length: n }, (_, r) => r % 3),
      item: Int32Array.from({ length: n }, (_, r) => r % 2),
      value: Float32Array.from({ length: n }, (_, r) => r % 2),
      timestamp: Float64Array.from({ length: n }, (_, r) => 1000 + (r % 6)),
      context: { device: { kind: 'categorical', values: Array.from({ length: n }, (_, r) => (r % 3 === 0 ? 'mobile' : 'web')) } },
    },
    positiveThreshold: 1,
  };
}

describe('buildTrainingSetup', () => {
  it('splits by the protocol hash over rows + 1 and counts train rows', () => {
    const dataset = tiny();
    const setup = buildTrainingSetup(dataset);
    const { interactions } = dataset;
    for (let r = 0; r < interactions.length; r++) {
      expect(setup.split[r]).toBe(protocolIsTrain(interactions.user[r]! + 1, interactions.item[r]! + 1) ? 1 : 0);
    }
    const counts = setup.dataset.users.columns.train_count!.values as Float64Array;
    for (let u = 0; u < 3; u++) {
      let expected = 0;
      for (let r = 0; r < interactions.length; r++) if (interactions.user[r] === u && setup.split[r] === 1) expected++;
      expect(counts[u]).toBe(expected);
    }
    expect(dataset.users.columns.train_count).toBeUndefined();
  });

  it('puts the latest interactions in test for the time split', () => {
    const setup = buildTrainingSetup(tiny(), { split: 'time', testFraction: 0.25 });
    // Timestamps 1000..1005 twice; the 3 latest: both rows at 1005 and the later row at 1004.
    expect(Array.from(setup.split)).toEqual([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0]);
    expect(() => buildTrainingSetup(tiny(), { split: 'time', testFraction: 2 })).toThrow('testFraction');
  });

  it('builds the three specs from every usable column', () => {
    const setup = buildTrainingSetup(tiny(), { split: 'time' });
    const names = (features: { name: string }[]) => features.map((f) => f.name);
    expect(names(setup.userTower.features)).toEqual(['user_id', 'country', 'user_category', 'device', 'recent_items']);
    expect(names(setup.itemTower.features)).toEqual(['item_id', 'item_category', 'tags']);
    expect(names(setup.ranking.features)).toEqual([
      'user_id',
      'country',
      'user_category',
      'item_id',
      'item_category',
      'device',
      'tags',
      'recent_items',
      'age',
      'price',
      'user_train_count',
      'item_train_count',
    ]);
    const [userId, country] = setup.userTower.features;
    expect(userId).toMatchObject({
      kind: 'categorical',
      source: 'user',
      column: 'user_id',
      vocabulary: ['<unk>', 'u1', 'u2', 'u3'],
      unknown: 0,
    });
    expect(country).toMatchObject({ vocabulary: ['<unk>', 'de', 'fr'], unknown: 0 });
    expect(setup.itemTower.features[2]).toMatchObject({ kind: 'multi', vocabulary: ['<unk>', 'x', 'y', 'z'], maxValues: 3 });
    const age = setup.ranking.features.find((f) => f.name === 'age')!;
    // Train rows (time split, 10 of 12) see users 0,1,2 in turn; user 2 has no age and is skipped.
    expect(age).toMatchObject({ kind: 'continuous', transform: 'identity', mean: 30, std: 10, missing: 30 });
    expect(setup.ranking.features.find((f) => f.name === 'user_train_count')).toMatchObject({
      transform: 'log1p',
      source: 'user',
      column: 'train_count',
    });
    for (const spec of [setup.ranking, setup.userTower, setup.itemTower]) {
      const encoded = [
        encodeTable(setup.dataset.users, spec.features, 'user'),
        encodeTable(setup.dataset.items, spec.features, 'item'),
        encodeTable({ columns: setup.dataset.interactions.context, length: setup.dataset.interactions.length }, spec.features, 'context'),
      ];
      const slots = encoded.reduce((sum, e) => sum + e.categorical.size + e.multi.size + e.continuous.size, 0);
      expect(slots).toBe(spec.features.length);
    }
    expect(setup.ranking.features.some((f) => f.column === 'created_at')).toBe(false);
  });

  it("adds each interaction's recent positive items as context, with the item vocabulary", () => {
    const setup = buildTrainingSetup(tiny(), { historyLength: 2 });
    const recent = setup.dataset.interactions.context.recent_items!;
    expect(recent.kind).toBe('multi');
    // User row 0 has rows 0, 3, 6, 9 (times 1000, 1003, 1000, 1003; ties by row): order 0, 6, 3, 9.
    // Positives (odd rows) are 3 and 9, both item 'a' (row 1).
    expect(recent.values[0]).toEqual([]);
    expect(recent.values[6]).toEqual([]);
    expect(recent.values[3]).toEqual([]);
    expect(recent.values[9]).toEqual(['a']);
    expect(setup.userTower.features.at(-1)).toMatchObject({
      kind: 'multi',
      source: 'context',
      vocabulary: ['<unk>', 'a', 'b'],
      maxValues: 2,
    });
    expect(buildTrainingSetup(tiny(), { historyLength: 0 }).dataset.interactions.context.recent_items).toBeUndefined();
  });

  it('hashes vocabularies longer than maxVocabulary', () => {
    const setup = buildTrainingSetup(generateSynthetic({ seed: 3, users: 50, items: 300, interactionsPerUser: 4 }), { maxVocabulary: 100 });
    const [userId] = setup.userTower.features;
    const [itemId, category] = setup.itemTower.features;
    expect(userId).toMatchObject({ vocabulary: expect.any(Array) });
    expect(itemId).toMatchObject({ hashBuckets: 100, unknown: 0 });
    expect(itemId).not.toHaveProperty('vocabulary');
    expect(category).toMatchObject({ vocabulary: expect.any(Array) });
    const encoded = encodeTable(setup.dataset.items, setup.itemTower.features);
    expect(Math.max(...encoded.categorical.get('item_id')!)).toBeLessThan(100);
  });

  it('fingerprints data and split, stable across runs', () => {
    const a = buildTrainingSetup(tiny());
    const b = buildTrainingSetup(tiny());
    expect(fingerprint(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(buildTrainingSetup(tiny(), { split: 'time' }))).not.toBe(fingerprint(a));
    b.dataset.interactions.value[0] = 5;
    expect(fingerprint(b)).not.toBe(fingerprint(a));
  });
});
