import { Random } from '@recsys/data';
import { FrequencyEstimator } from './frequency-estimator';

describe('FrequencyEstimator', () => {
  it('follows Algorithm 2 step by step, one update per repeated item in a batch', () => {
    const est = new FrequencyEstimator(1 << 16, 0.5, 100);
    // step 1: B = 0.5·100 + 0.5·(1 − 0) = 50.5 for item 7 (seen twice in the batch: one update)
    expect(Array.from(est.update([7, 7, 9], 1))).toEqual([-Math.log(50.5), -Math.log(50.5), -Math.log(50.5)].map(Math.fround));
    // step 4: item 7 gap 3 → B = 0.5·50.5 + 0.5·3 = 26.75
    expect(est.update([7], 4)[0]).toBeCloseTo(-Math.log(26.75), 6);
    expect(est.probability(7)).toBeCloseTo(1 / 26.75, 9);
    expect(est.probability(9)).toBeCloseTo(1 / 50.5, 9);
  });

  it('converges to the sampling probabilities of a stream', () => {
    const est = new FrequencyEstimator(1 << 16, 0.01);
    const rng = new Random(3);
    // Item k is drawn with probability proportional to 1/(k+1) over 20 items, one item per step.
    const weights = Array.from({ length: 20 }, (_, k) => 1 / (k + 1));
    const total = weights.reduce((a, b) => a + b);
    for (let step = 1; step <= 200_000; step++) {
      let u = rng.next() * total;
      let k = 0;
      while ((u -= weights[k]!) > 0) k++;
      est.update([k], step);
    }
    for (const k of [0, 1, 4, 19]) {
      const p = weights[k]! / total;
      expect(Math.abs(est.probability(k) - p) / p).toBeLessThan(0.3);
    }
  });
});
