import { buildTrainingSetup, generateSynthetic, Random } from '@recsys/data';
import { topK } from './eval/metrics';
import { rankByVectors } from './scoring';

describe('rankByVectors', () => {
  const setup = buildTrainingSetup(generateSynthetic({ seed: 4, users: 120, items: 70, interactionsPerUser: 12 }));
  const rng = new Random(1);
  const dim = 8;
  const vectors = {
    dim,
    users: Float32Array.from({ length: 120 * dim }, () => rng.normal()),
    items: Float32Array.from({ length: 70 * dim }, () => rng.normal()),
  };

  it('ranks every user with test positives by dot product, without their train items', async () => {
    const { ranked, truth, corpusSize } = await rankByVectors(setup, vectors, 10);
    expect(corpusSize).toBe(70);
    const { interactions } = setup.dataset;
    const testUsers = new Set<number>();
    for (let r = 0; r < interactions.length; r++)
      if (setup.split[r] === 0 && interactions.value[r]! >= setup.dataset.positiveThreshold) testUsers.add(interactions.user[r]!);
    expect(ranked).toHaveLength(testUsers.size);
    const u = [...testUsers].sort((a, b) => a - b)[0]!;
    const seen = new Set<number>();
    for (let r = 0; r < interactions.length; r++) if (interactions.user[r] === u && setup.split[r] === 1) seen.add(interactions.item[r]!);
    const scores = Float32Array.from({ length: 70 }, (_, i) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += vectors.users[u * dim + j]! * vectors.items[i * dim + j]!;
      return s;
    });
    expect(Array.from(ranked[0]!)).toEqual(Array.from(topK(scores, 10, seen)));
    expect(truth[0]!.size).toBeGreaterThan(0);
    for (const i of ranked[0]!) expect(seen.has(i)).toBe(false);
  });

  it('ranks an even sample when more users than the cap have positives', async () => {
    const all = await rankByVectors(setup, vectors, 10);
    const capped = await rankByVectors(setup, vectors, 10, 7);
    expect(capped.ranked).toHaveLength(7);
    expect(capped.ranked[0]).toEqual(all.ranked[0]);
  });
});
