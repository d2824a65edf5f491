import { fingerprint } from './fingerprint.js';
import { buildTrainingSetup } from './setup.js';
import { generateSynthetic, generateSyntheticWithTruth } from './synthetic.js';

describe('generateSynthetic', () => {
  const options = { seed: 11, users: 1000, items: 2000, interactionsPerUser: 30 };
  const { dataset, truth } = generateSyntheticWithTruth(options);
  const { interactions } = dataset;

  it('is deterministic by seed and differs by seed', () => {
    const again = generateSynthetic(options);
    expect(again).toEqual(dataset);
    const other = generateSynthetic({ ...options, seed: 12 });
    expect(other.interactions.item).not.toEqual(interactions.item);
    expect(fingerprint(buildTrainingSetup(other))).not.toBe(fingerprint(buildTrainingSetup(dataset)));
  });

  it('has the requested shape, columns and time order', () => {
    expect(dataset.users.ids).toHaveLength(1000);
    expect(dataset.items.ids).toHaveLength(2000);
    expect(interactions.length).toBe(30_000);
    expect(dataset.positiveThreshold).toBe(1);
    expect(Object.keys(dataset.users.columns).sort()).toEqual(['age_bucket', 'country', 'segment']);
    expect(Object.fromEntries(Object.entries(dataset.items.columns).map(([name, c]) => [name, c.kind]))).toEqual({
      category: 'categorical',
      tags: 'multi',
      price: 'numeric',
      created_at: 'numeric',
    });
    const perUser = new Int32Array(1000);
    for (let r = 0; r < interactions.length; r++) {
      perUser[interactions.user[r]!]!++;
      if (r > 0 && interactions.timestamp[r]! < interactions.timestamp[r - 1]!) throw new Error(`timestamps decrease at ${r}`);
      if (interactions.value[r] !== 0 && interactions.value[r] !== 1) throw new Error(`value ${interactions.value[r]} at ${r}`);
    }
    expect(new Set(perUser)).toEqual(new Set([30]));
    for (const tags of dataset.items.columns.tags!.values as string[][]) expect(tags.length >= 1 && tags.length <= 3).toBe(true);
  });

  it('has power-law popularity', () => {
    const counts = new Float64Array(2000);
    for (let r = 0; r < interactions.length; r++) counts[interactions.item[r]!]!++;
    const sorted = Array.from(counts).sort((a, b) => b - a);
    const top = sorted.slice(0, 20).reduce((a, b) => a + b, 0);
    expect(top / interactions.length).toBeGreaterThan(0.25);
  });

  it('clicks more where the planted affinity is high', () => {
    const categories = truth.affinity.length / 8;
    const clicks = { high: 0, highShown: 0, low: 0, lowShown: 0 };
    for (let r = 0; r < interactions.length; r++) {
      const i = interactions.item[r]!;
      const a = truth.affinity[truth.userCluster[interactions.user[r]!]! * categories + truth.itemCategory[i]!]!;
      if (a > 2) {
        clicks.highShown++;
        clicks.high += interactions.value[r]!;
      } else {
        clicks.lowShown++;
        clicks.low += interactions.value[r]!;
      }
    }
    expect(clicks.highShown).toBeGreaterThan(1000);
    expect(clicks.high / clicks.highShown).toBeGreaterThan(0.5);
    expect(clicks.low / clicks.lowShown).toBeLessThan(0.3);
  });

  it('makes the newest items recent and rarely shown, and hints at clusters with segments', () => {
    const createdAt = dataset.items.columns.created_at!.values as Float64Array;
    const end = (1_735_689_600 + 30 * 86_400) * 1000;
    expect(truth.firstNewItem).toBe(1960);
    let newShown = 0;
    for (let r = 0; r < interactions.length; r++) {
      const i = interactions.item[r]!;
      if (i >= truth.firstNewItem) newShown++;
      if (createdAt[i]! > interactions.timestamp[r]! * 1000) throw new Error(`item ${i} shown before it was created`);
    }
    for (let i = 0; i < 2000; i++) {
      expect(createdAt[i]! >= end - 86_400_000 && createdAt[i]! < end).toBe(i >= truth.firstNewItem);
    }
    expect(newShown / interactions.length).toBeLessThan(0.01);
    const segment = dataset.users.columns.segment!.values as string[];
    const agree = segment.filter((s, u) => s === `seg-${truth.userCluster[u]}`).length;
    expect(agree / 1000).toBeGreaterThan(0.75);
  });

  // How fast is bench:pipeline's and bench:retrieval's question (both generate 1M-item catalogues); no wall-clock assert here.
  it('makes a million items', () => {
    const big = generateSynthetic({ seed: 1, users: 1000, items: 1_000_000, interactionsPerUser: 10 });
    expect(big.items.ids).toHaveLength(1_000_000);
    expect(new Set(big.items.ids.slice(0, 1000)).size).toBe(1000);
  });

  it('refuses bad options', () => {
    expect(() => generateSynthetic({ seed: 1, users: 0, items: 1 })).toThrow('users must be an integer >= 1');
    expect(() => generateSynthetic({ seed: 1, users: 1, items: 1, newItemFraction: 1 })).toThrow('newItemFraction');
  });
});
