import { Random } from '@recsys/data';
import { g } from '../graph/graph';
import { trainLoop } from './loop';
import { softmaxFeeds } from './retrieval';

describe('mixed negatives: softmax feeds', () => {
  it("targets each example's own column, masks accidental hits in-batch and among the sampled items", () => {
    // Two examples (items 4 and 7), then sampled negatives 7, 2, 4.
    const items = Int32Array.of(4, 7, 7, 2, 4);
    const logq = Float32Array.of(-1, -2, -3, -3, -3);
    const feeds = softmaxFeeds(items, 2, logq);
    expect(feeds.targets!.shape).toEqual([2, 5]);
    expect(Array.from(feeds.targets!.data)).toEqual([1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    // Row 0 (item 4): the sampled 4 is an accidental hit; row 1 (item 7): the sampled 7.
    expect(Array.from(feeds.mask!.data)).toEqual([0, 0, 0, 0, -1e9, 0, 0, -1e9, 0, 0]);
    expect(feeds.logq!.data).toBe(logq);
    expect(feeds.inv_batch!.data[0]).toBeCloseTo(0.5);
  });
});

describe('training loop validation', () => {
  it('keeps the params of the best validated epoch and stops after `patience` epochs without a better one', async () => {
    // loss = (w - 3)^2 summed: w walks towards 3; the validation score prefers w near 1 (reached early).
    const w = g.param('w', [1], Float32Array.of(0));
    const target = g.input('target', [1]);
    const diff = g.sub(w, target);
    const loss = g.reduceSum(g.mul(diff, diff), [0]);
    const seen: number[] = [];
    const result = await trainLoop({
      model: 'toy',
      count: 1,
      epochs: 50,
      batchSize: 1,
      rng: new Random(1),
      loss,
      params: [w],
      optimizer: { lr: 0.5, threads: 1 },
      feeds: () => ({ target: { data: Float32Array.of(3), shape: [1] } }),
      validation: {
        patience: 2,
        evaluate: async () => {
          const value = (w.data as Float32Array)[0]!;
          seen.push(value);
          return { score: -Math.abs(value - 1), metrics: { w: value } };
        },
      },
    });
    const best = seen.reduce((b, v, k) => (Math.abs(v - 1) < Math.abs(seen[b]! - 1) ? k : b), 0);
    expect(result.bestEpoch).toBe(best + 1);
    expect(result.epochsRun).toBe(best + 1 + 2);
    expect(result.validation!.map((v) => v.epoch)).toEqual(seen.map((_, k) => k + 1));
    // The params are the best epoch's again.
    expect((w.data as Float32Array)[0]).toBe(seen[best]);
  });
});
