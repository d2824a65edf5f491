import type { AdaptiveConfig } from './config.js';
import { AdaptiveCounts, type CountChange } from './adaptive-counts.js';
import { LatencyWindow } from './latency-window.js';

const config: AdaptiveConfig = {
  enabled: true,
  retrieveMax: 1000,
  retrieveMin: 200,
  rankMax: 300,
  rankMin: 60,
  percentile: 95,
  window: 20,
  targetMs: { retrieval: 50, preranking: 20, ranking: 40, reranking: 20 },
  channelShares: { two_tower: 0.6, popular: 0.15, item_to_item: 0.25 },
};

function feed(counts: AdaptiveCounts, stage: 'retrieval' | 'ranking' | 'preranking' | 'reranking', ms: number, n = config.window): void {
  for (let i = 0; i < n; i++) counts.observe(stage, ms);
}

describe('latency window', () => {
  it('keeps the last values and gives nearest-rank percentiles', () => {
    const w = new LatencyWindow(10);
    for (let v = 1; v <= 15; v++) w.add(v);
    expect(w.count).toBe(10);
    expect(w.percentile(50)).toBe(10); // holds 6..15
    expect(w.percentile(95)).toBe(15);
    expect(w.percentile(0)).toBe(6);
    w.clear();
    expect(Number.isNaN(w.percentile(50))).toBe(true);
  });
});

describe('adaptive candidate counts', () => {
  it('shrinks the count that drives a slow stage, bounded below, and grows it back when the stage recovers, bounded above', () => {
    const changes: CountChange[] = [];
    const counts = new AdaptiveCounts(config, (c) => changes.push(c));
    expect(counts.current()).toEqual({ retrieve: 1000, rank: 300 });

    feed(counts, 'ranking', 80);
    expect(counts.current().rank).toBe(225);
    expect(changes).toEqual([{ count: 'rank', from: 300, to: 225, stage: 'ranking', percentileMs: 80 }]);
    for (let i = 0; i < 20; i++) feed(counts, 'ranking', 80);
    expect(counts.current().rank).toBe(60);
    expect(counts.current().retrieve).toBe(1000); // ranking latency does not touch the retrieved count

    for (let i = 0; i < 40; i++) feed(counts, 'ranking', 5);
    expect(counts.current().rank).toBe(300);
    expect(changes.at(-1)!.to).toBe(300);
  });

  it('judges a window only when full, by the configured percentile, and holds steady inside the target band', () => {
    const counts = new AdaptiveCounts(config);
    feed(counts, 'retrieval', 80, config.window - 1);
    expect(counts.current().retrieve).toBe(1000);
    counts.observe('retrieval', 10); // 19 slow of 20: p95 is slow
    expect(counts.current().retrieve).toBe(750);
    // p95 of 18 fast and 2 slow is slow: one slow call in twenty is within p95, two are not.
    feed(counts, 'preranking', 10, 18);
    feed(counts, 'preranking', 30, 2);
    expect(counts.current().retrieve).toBe(562);
    // Between 60% of target and target: no change.
    feed(counts, 'retrieval', 40);
    expect(counts.current().retrieve).toBe(562);
  });

  it('keeps the ranked count within the retrieved count', () => {
    const counts = new AdaptiveCounts({ ...config, retrieveMin: 100, rankMin: 50 });
    for (let i = 0; i < 10; i++) feed(counts, 'retrieval', 500);
    expect(counts.current()).toEqual({ retrieve: 100, rank: 100 });
  });

  it('does nothing when turned off', () => {
    const counts = new AdaptiveCounts({ ...config, enabled: false });
    feed(counts, 'ranking', 1000, 100);
    expect(counts.current()).toEqual({ retrieve: 1000, rank: 300 });
  });
});
