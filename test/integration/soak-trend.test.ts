// The soak's verdict on one process's samples (test/resilience/soak.ts): what counts as growth.
import { type ProcessSample, trendOf } from '../resilience/soak';

const sample = (t: number, fields: Partial<ProcessSample> = {}): ProcessSample => ({
  t,
  rssMiB: 200,
  fds: 40,
  threads: 12,
  lagP99Ms: 15,
  lagMeanMs: 10,
  handles: 20,
  heapMiB: 30,
  heapTotalMiB: 64,
  newSpaceMiB: 32,
  ...fields,
});

/** 20 samples; `at(i)` gives sample i's fields (the first 5 are warm-up, windows of 3 at each end of the rest). */
const series = (at: (i: number) => Partial<ProcessSample>) => Array.from({ length: 20 }, (_, i) => sample(i, at(i)));

describe('soak trend', () => {
  it('is flat when handles and descriptors only move up and down with the requests in flight', () => {
    // Handles 21, 21, 21 in the first window and 22, 21, 22 in the last (a mean of 21 → 21.7, which comparing means
    // called growth): the count came back down to 21, so nothing leaked.
    const trend = trendOf(
      'gateway',
      1,
      series((i) => ({ handles: i === 17 || i === 19 ? 22 : 21, fds: 45 + (i % 2) })),
    );
    expect([trend.handles_start, trend.handles_end]).toEqual([21, 21.7]);
    expect(trend.misses).toEqual([]);
  });

  it('flags handles or descriptors that never come back down to where they started, and RSS growth of 10% or more', () => {
    const leaking = trendOf(
      'gateway',
      1,
      series((i) => ({ handles: 20 + i, fds: 40 + Math.floor(i / 4), rssMiB: 200 + 3 * i })),
    );
    expect(leaking.misses).toEqual([
      expect.stringMatching(/^RSS grew \d+(\.\d)?%$/),
      expect.stringMatching(/^file descriptors grew /),
      expect.stringMatching(/^active handles grew /),
    ]);
    expect(leaking.rss_growth_pct).toBeGreaterThan(10);
  });

  it('ignores the warm-up quarter', () => {
    const trend = trendOf(
      'reranking',
      1,
      series((i) => ({ rssMiB: i < 5 ? 100 + 20 * i : 200, handles: i < 5 ? 10 + i : 20 })),
    );
    expect(trend.misses).toEqual([]);
    expect(trend.rss_growth_pct).toBe(0);
  });
});
