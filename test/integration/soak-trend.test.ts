// The soak's verdict on one process's samples (test/resilience/soak.ts): what counts as growth.
import { type ProcessSample, type RestCounts, trendOf } from '../resilience/soak';

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
const rest = (start: RestCounts, end: RestCounts = start) => ({ start, end });

describe('soak trend', () => {
  it('judges descriptors and handles at rest: under load they move with the requests in flight', () => {
    // Under load the handles read 18 in the first window and 22 in the last (the run that flagged a gateway with
    // nothing leaked); at rest, after the warm-up and after the soak, 16 both times.
    const trend = trendOf(
      'gateway',
      1,
      series((i) => ({ handles: i < 10 ? 18 : 22, fds: i < 10 ? 42 : 46 })),
      rest({ fds: 38, handles: 16 }),
    );
    expect([trend.handles_start, trend.handles_end, trend.fds_start, trend.fds_end]).toEqual([16, 16, 38, 38]);
    expect(trend.misses).toEqual([]);
  });

  it('flags handles or descriptors still there at rest after the soak, and RSS growth of 10% or more', () => {
    const leaking = trendOf(
      'gateway',
      1,
      series((i) => ({ rssMiB: 200 + 3 * i })),
      rest({ fds: 38, handles: 16 }, { fds: 39, handles: 17 }),
    );
    expect(leaking.misses).toEqual([
      expect.stringMatching(/^RSS grew \d+(\.\d)?%$/),
      'file descriptors at rest grew 38 → 39',
      'active handles at rest grew 16 → 17',
    ]);
    expect(leaking.rss_growth_pct).toBeGreaterThan(10);
    // Fewer at rest after the soak (a connection aged out and not yet needed again) is not growth.
    expect(
      trendOf(
        'gateway',
        1,
        series(() => ({})),
        rest({ fds: 38, handles: 16 }, { fds: 37, handles: 15 }),
      ).misses,
    ).toEqual([]);
  });

  it('ignores the warm-up quarter', () => {
    const trend = trendOf(
      'reranking',
      1,
      series((i) => ({ rssMiB: i < 5 ? 100 + 20 * i : 200 })),
      rest({ fds: 30, handles: 12 }),
    );
    expect(trend.misses).toEqual([]);
    expect(trend.rss_growth_pct).toBe(0);
  });
});
