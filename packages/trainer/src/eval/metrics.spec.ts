import {
  F1_THRESHOLD_GRID,
  auc,
  bestF1Threshold,
  classificationAt,
  linspace,
  logLoss,
  recallAtK,
  recallCurve,
  rocCurve,
  topK,
} from './metrics.js';

/** mulberry32: a small seeded generator so that failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A cheap deterministic pseudo-uniform value in [0, 1) for large inputs. */
function hashUnit(i: number): number {
  return (Math.imul(i ^ (i >>> 13), 0x9e3779b1) >>> 0) / 4294967296;
}

/** Random labels and scores quantized to `levels` values (many ties), scores leaning up for positives. */
function tiedData(random: () => number, n: number, levels: number): { labels: Uint8Array; scores: Float64Array } {
  const labels = new Uint8Array(n);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = random() < 0.35 ? 1 : 0;
    scores[i] = Math.min(levels - 1, Math.floor((random() * 0.8 + labels[i]! * 0.2) * levels)) / (levels - 1);
  }
  return { labels, scores };
}

function bruteAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let u = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) u += 1;
      else if (scores[i] === scores[j]) u += 0.5;
    }
  }
  return u / pairs;
}

describe('auc', () => {
  it('matches hand-computed cases', () => {
    expect(auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBe(0.75); // sklearn's documented example
    expect(auc([0, 1], [0.2, 0.9])).toBe(1);
    expect(auc([0, 1], [0.9, 0.2])).toBe(0);
    // Pairs: (0.5, 0.5) ½, (0.5, 0.2) 1, (0.9, 0.5) 1, (0.9, 0.2) 1 → 3.5 / 4.
    expect(auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])).toBe(0.875);
    expect(auc([1, 0, 1, 0, 0], [3, 3, 3, 3, 3])).toBe(0.5);
    expect(auc(new Float32Array([1, 0, 1, 0]), new Float32Array([2, 1, 1, 0]))).toBe(0.875);
  });

  it('equals a brute-force pair count on random data with many ties', () => {
    const random = rng(1);
    for (let c = 0; c < 40; c++) {
      const { labels, scores } = tiedData(random, 2 + Math.floor(random() * 400), 2 + Math.floor(random() * 30));
      const expected = labels.includes(1) && labels.includes(0) ? bruteAuc(labels, scores) : NaN;
      expect(auc(labels, scores)).toBe(expected);
    }
  });

  it('is NaN when a class is absent or a score is NaN, and rejects bad input', () => {
    expect(auc([1, 1, 1], [0.1, 0.2, 0.3])).toBeNaN();
    expect(auc([0, 0], [0.1, 0.2])).toBeNaN();
    expect(auc([], [])).toBeNaN();
    expect(auc([0, 1], [0.1, NaN])).toBeNaN();
    expect(() => auc([0, 2], [0.1, 0.2])).toThrow('labels must be 0 or 1, got 2 at index 1');
    expect(() => auc([0, 1], [0.1])).toThrow('labels and scores differ in length: 2 != 1');
  });

  it('is exact on a million examples', () => {
    const labels = new Float32Array(1_000_000);
    const scores = new Float32Array(1_000_000);
    for (let i = 0; i < labels.length; i++) {
      labels[i] = i % 5 === 0 ? 1 : 0;
      scores[i] = hashUnit(i) + 0.25 * labels[i]!;
    }
    const value = auc(labels, scores);
    expect(value).toBeCloseTo(1 - 0.75 ** 2 / 2, 2);
  });
});

describe('rocCurve', () => {
  it('collapses ties into one step, from (0,0) to (1,1)', () => {
    const roc = rocCurve([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]);
    expect(roc.fpr).toEqual([0, 0, 0.5, 1]);
    expect(roc.tpr).toEqual([0, 0.5, 1, 1]);
    expect(roc.thresholds).toEqual([Infinity, 0.9, 0.5, 0.2]);
    expect(rocCurve([1, 0, 1], [7, 7, 7])).toEqual({ fpr: [0, 1], tpr: [0, 1], thresholds: [Infinity, 7] });
  });

  it('is monotone, keeps its ends and its trapezoid area is the AUC when not downsampled', () => {
    const random = rng(2);
    for (let c = 0; c < 20; c++) {
      const { labels, scores } = tiedData(random, 50 + Math.floor(random() * 2000), 3 + Math.floor(random() * 200));
      if (!labels.includes(1) || !labels.includes(0)) continue;
      for (const maxPoints of [2, 5, 40, 201, 1_000_000]) {
        const { fpr, tpr, thresholds } = rocCurve(labels, scores, maxPoints);
        expect(fpr.length).toBeLessThanOrEqual(maxPoints);
        expect(fpr.length).toBe(tpr.length);
        expect(thresholds.length).toBe(fpr.length);
        expect([fpr[0], tpr[0], fpr.at(-1), tpr.at(-1)]).toEqual([0, 0, 1, 1]);
        const notMonotone = fpr.findIndex(
          (_, i) => i > 0 && !(fpr[i]! >= fpr[i - 1]! && tpr[i]! >= tpr[i - 1]! && thresholds[i]! < thresholds[i - 1]!),
        );
        expect(notMonotone).toBe(-1);
        if (maxPoints === 1_000_000) {
          expect(fpr.length).toBe(new Set(scores).size + 1);
          let area = 0;
          for (let i = 1; i < fpr.length; i++) area += ((fpr[i]! - fpr[i - 1]!) * (tpr[i]! + tpr[i - 1]!)) / 2;
          expect(area).toBeCloseTo(auc(labels, scores), 12);
        }
      }
    }
  });

  it('drops only collinear points when that is enough', () => {
    // Perfect separation: straight up, then straight right: three points say it all.
    const labels = [1, 1, 1, 1, 0, 0, 0, 0];
    const roc = rocCurve(labels, [8, 7, 6, 5, 4, 3, 2, 1], 4);
    expect(roc).toEqual({ fpr: [0, 0, 1], tpr: [0, 1, 1], thresholds: [Infinity, 5, 1] });
  });

  it('is empty when undefined and rejects maxPoints < 2', () => {
    expect(rocCurve([1, 1], [0.1, 0.2])).toEqual({ fpr: [], tpr: [], thresholds: [] });
    expect(() => rocCurve([0, 1], [0.1, 0.2], 1)).toThrow('maxPoints must be at least 2');
  });
});

describe('logLoss', () => {
  it('is -mean(y ln(p + eps) + (1 - y) ln(1 - p + eps))', () => {
    const eps = 1e-7;
    const expected = -(Math.log(0.9 + eps) + Math.log(1 - 0.2 + eps) + Math.log(0.6 + eps) + Math.log(1 - 0.7 + eps)) / 4;
    expect(logLoss([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.7])).toBeCloseTo(expected, 15);
    expect(logLoss([1, 0], [1, 0])).toBeCloseTo(-Math.log(1 + 1e-7), 15);
    expect(logLoss([1, 0], [0, 1])).toBeCloseTo(-Math.log(1e-7), 12);
    expect(logLoss([1], [0], 1e-3)).toBeCloseTo(-Math.log(1e-3), 12);
    expect(logLoss([], [])).toBeNaN();
  });
});

describe('classificationAt and bestF1Threshold', () => {
  it('predicts positive at p >= threshold', () => {
    // tp 2 (0.9, 0.5), fp 1 (0.5), fn 1 (0.1).
    const m = classificationAt([1, 1, 0, 0, 1], [0.9, 0.5, 0.5, 0.2, 0.1], 0.5);
    expect(m).toEqual({ f1: 4 / 6, precision: 2 / 3, recall: 2 / 3, threshold: 0.5 });
    expect(classificationAt([1, 0], [0.1, 0.2], 0.5)).toEqual({ f1: 0, precision: 0, recall: 0, threshold: 0.5 });
    expect(classificationAt([0, 0], [0.7, 0.2], 0.5)).toEqual({ f1: 0, precision: 0, recall: 0, threshold: 0.5 });
  });

  it('uses numpy linspace(0.05, 0.95, 91) as the default grid', () => {
    expect(F1_THRESHOLD_GRID).toHaveLength(91);
    expect(F1_THRESHOLD_GRID[0]).toBe(0.05);
    expect(F1_THRESHOLD_GRID[90]).toBe(0.95);
    // Bit for bit what numpy 2.4 gives: start + i * ((stop - start) / (num - 1)).
    expect(F1_THRESHOLD_GRID[45]).toBe(0.49999999999999994);
    expect(F1_THRESHOLD_GRID[5]).toBe(0.09999999999999999);
    expect(linspace(0, 1, 5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(linspace(3, 4, 1)).toEqual([3]);
  });

  it('picks the first grid point with the strictly greatest F1, as a brute-force grid search does', () => {
    const random = rng(3);
    const brute = (labels: ArrayLike<number>, probs: ArrayLike<number>, grid: readonly number[]): number => {
      let best = grid[0]!;
      let bestF1 = -Infinity;
      for (const t of grid) {
        const { f1 } = classificationAt(labels, probs, t);
        if (f1 > bestF1) [best, bestF1] = [t, f1];
      }
      return best;
    };
    for (let c = 0; c < 60; c++) {
      const n = 1 + Math.floor(random() * 500);
      const labels = new Uint8Array(n);
      const probs = new Float64Array(n);
      const mode = c % 3;
      for (let i = 0; i < n; i++) {
        labels[i] = random() < 0.3 ? 1 : 0;
        const p = Math.min(1, random() * 0.7 + labels[i]! * 0.3);
        // Coarse values (equal F1 over runs of grid points), exact grid values (ties at the threshold), raw.
        probs[i] = mode === 0 ? Math.round(p * 10) / 10 : mode === 1 ? F1_THRESHOLD_GRID[Math.floor(p * 90)]! : p;
      }
      expect(bestF1Threshold(labels, probs)).toBe(brute(labels, probs, F1_THRESHOLD_GRID));
      const grid = [0.5, 0.3, 0.3, 0.7, 0.1];
      expect(bestF1Threshold(labels, probs, grid)).toBe(brute(labels, probs, grid));
    }
  });

  it('returns the first grid point when no threshold finds a positive', () => {
    expect(bestF1Threshold([0, 0, 0], [0.2, 0.5, 0.9])).toBe(0.05);
    expect(bestF1Threshold([1, 0], [0.01, 0.02])).toBe(0.05);
    expect(bestF1Threshold([1, 0, 1], [0.9, 0.2, NaN])).toBe(brute1([1, 0, 1], [0.9, 0.2, NaN]));
  });
});

function brute1(labels: number[], probs: number[]): number {
  let best = F1_THRESHOLD_GRID[0]!;
  let bestF1 = -Infinity;
  for (const t of F1_THRESHOLD_GRID) {
    const { f1 } = classificationAt(labels, probs, t);
    if (f1 > bestF1) [best, bestF1] = [t, f1];
  }
  return best;
}

describe('topK', () => {
  const fullSort = (scores: Float32Array, k: number, exclude: Set<number>): number[] =>
    Array.from(scores.keys())
      .filter((i) => !exclude.has(i) && !Number.isNaN(scores[i]))
      .sort((a, b) => scores[b]! - scores[a]! || a - b)
      .slice(0, k);

  it('returns the indices of the highest scores, ties to the lower index', () => {
    const scores = new Float32Array([0.5, 0.9, 0.5, 0.1, 0.9, NaN, 0.5]);
    expect([...topK(scores, 4)]).toEqual([1, 4, 0, 2]);
    expect([...topK(scores, 3, [1])]).toEqual([4, 0, 2]);
    expect([...topK(scores, 3, new Set([4, 0]))]).toEqual([1, 2, 6]);
    expect([...topK(scores, 10)]).toEqual([1, 4, 0, 2, 6, 3]); // NaN never returned
    expect(topK(scores, 0)).toHaveLength(0);
    expect(topK(new Float32Array(0), 5)).toHaveLength(0);
  });

  it('agrees with a full sort on random data with ties and exclusions', () => {
    const random = rng(4);
    for (let c = 0; c < 50; c++) {
      const n = 1 + Math.floor(random() * 3000);
      const levels = 1 + Math.floor(random() * 100);
      const scores = Float32Array.from({ length: n }, () => Math.floor(random() * levels) - levels / 2);
      const exclude = new Set(Array.from({ length: Math.floor(random() * n * 0.3) }, () => Math.floor(random() * n)));
      const k = 1 + Math.floor(random() * 150);
      const expected = fullSort(scores, k, exclude);
      expect([...topK(scores, k, exclude)]).toEqual(expected);
      expect([...topK(scores, k, Int32Array.from(exclude))]).toEqual(expected);
    }
  });

  it('handles a million scores', () => {
    const scores = Float32Array.from({ length: 1_000_000 }, (_, i) => hashUnit(i));
    scores.set([2, 2, 2]); // the three best, excluded
    const top = topK(scores, 100, new Set([0, 1, 2]));
    const expected = scores.slice(3).sort().reverse().subarray(0, 100);
    expect(Float32Array.from(top, (i) => scores[i]!)).toEqual(expected);
  });
});

describe('recallAtK and recallCurve', () => {
  const ranked = [Int32Array.of(1, 2, 3, 4), Int32Array.of(9, 8, 7, 6), Int32Array.of(5, 6), Int32Array.of(1, 2)];
  const truth = [new Set([2, 4, 10]), [7], new Set<number>(), Int32Array.of(3)];

  it('divides by min(|truth|, k) and skips users without truth', () => {
    const r = recallAtK(ranked, truth, [1, 2, 3, 4]);
    // User 0: hits at ranks 2 and 4 of 3 relevant. User 1: hit at rank 3 of 1 relevant. User 2 skipped. User 3: none.
    expect(r.get(1)).toBeCloseTo((0 + 0 + 0) / 3, 15);
    expect(r.get(2)).toBeCloseTo((1 / 2 + 0 + 0) / 3, 15);
    expect(r.get(3)).toBeCloseTo((1 / 3 + 1 + 0) / 3, 15);
    expect(r.get(4)).toBeCloseTo((2 / 3 + 1 + 0) / 3, 15);
    expect([...r.keys()]).toEqual([1, 2, 3, 4]);
  });

  it('gives recall@k for k = 1..maxK, counting duplicates in a ranking once', () => {
    const curve = recallCurve(ranked, truth, 5);
    expect(curve).toHaveLength(5);
    expect(curve[0]).toBe(0);
    expect(curve[1]).toBeCloseTo(1 / 6, 15);
    expect(curve[4]).toBeCloseTo((2 / 3 + 1) / 3, 15);
    expect(recallCurve([Int32Array.of(1, 1, 2)], [[1, 2]], 3)).toEqual([1, 0.5, 1]);
    expect(recallCurve([Int32Array.of(1)], [[]], 2)).toEqual([NaN, NaN]);
    expect(() => recallCurve([], [[1]])).toThrow('ranked and truth differ in length: 0 != 1');
    expect(() => recallAtK(ranked, truth, [0])).toThrow('k must be a positive integer, got 0');
  });

  it('agrees between recallCurve and recallAtK on random rankings', () => {
    const random = rng(6);
    const users = 300;
    const items = 500;
    const ranked = Array.from({ length: users }, () => {
      const scores = Float32Array.from({ length: items }, () => random());
      return topK(scores, 120);
    });
    const truth = Array.from(
      { length: users },
      () => new Set(Array.from({ length: Math.floor(random() * 30) }, () => Math.floor(random() * items))),
    );
    const curve = recallCurve(ranked, truth);
    const atK = recallAtK(ranked, truth, [1, 10, 50, 100]);
    expect(curve).toHaveLength(100);
    expect(curve[9]).toBe(atK.get(10));
    expect(curve[0]).toBe(atK.get(1));
    expect(curve[49]).toBe(atK.get(50));
    expect(curve[99]).toBe(atK.get(100));
  });
});
