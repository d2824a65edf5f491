import { LogRateLimiter, type SuppressedLines } from './log-rate-limiter';

function limiter(perWindow: number, windowMs: number, maxKeys?: number) {
  let now = 1_000_000;
  const summaries: SuppressedLines[] = [];
  const limit = new LogRateLimiter({ perWindow, windowMs, maxKeys, now: () => now, onSuppressed: (s) => summaries.push(s) });
  return { limit, summaries, advance: (ms: number) => (now += ms) };
}

describe('LogRateLimiter', () => {
  it('writes at most perWindow lines per key in a window and reports the rest once the window is over', () => {
    const { limit, summaries, advance } = limiter(3, 1000);
    const written = Array.from({ length: 10 }, () => limit.allow('RANKING: deadline_exceeded'));
    expect(written).toEqual([true, true, true, false, false, false, false, false, false, false]);
    // Another key has its own quota.
    expect(limit.allow('RERANKING: unavailable')).toBe(true);
    expect(summaries).toEqual([]);
    advance(999);
    expect(limit.allow('RANKING: deadline_exceeded')).toBe(false);
    expect(summaries).toEqual([]);
    // The next line after the window reports the window (8 left out) and opens a new one.
    advance(1);
    expect(limit.allow('RANKING: deadline_exceeded')).toBe(true);
    expect(summaries).toEqual([{ key: 'RANKING: deadline_exceeded', suppressed: 8, windowMs: 1000 }]);
  });

  it('reports a window that ended without another line on the sweep, and nothing for a key within its quota', () => {
    const { limit, summaries, advance } = limiter(2, 500);
    for (let i = 0; i < 5; i++) limit.allow('a');
    limit.allow('b');
    limit.sweep();
    expect(summaries).toEqual([]);
    advance(500);
    limit.sweep();
    expect(summaries).toEqual([{ key: 'a', suppressed: 3, windowMs: 500 }]);
    // Forgotten after the report: a new burst starts a fresh quota.
    expect([limit.allow('a'), limit.allow('a'), limit.allow('a')]).toEqual([true, true, false]);
    limit.close();
    expect(summaries.at(-1)).toEqual({ key: 'a', suppressed: 1, windowMs: 500 });
    expect(summaries).toHaveLength(2);
  });

  it('with a quota of 0 writes no line but still counts them', () => {
    const { limit, summaries } = limiter(0, 100);
    expect(limit.allow('x')).toBe(false);
    expect(limit.allow('x')).toBe(false);
    limit.close();
    expect(summaries).toEqual([{ key: 'x', suppressed: 2, windowMs: 100 }]);
  });

  it('folds keys beyond maxKeys into one, so arbitrary keys cannot grow memory', () => {
    const { limit, summaries } = limiter(1, 100, 2);
    expect([limit.allow('k1'), limit.allow('k2'), limit.allow('k3'), limit.allow('k4')]).toEqual([true, true, true, false]);
    limit.close();
    expect(summaries).toEqual([{ key: 'other', suppressed: 1, windowMs: 100 }]);
  });

  it('sweeps on its own timer once started', async () => {
    const summaries: SuppressedLines[] = [];
    const limit = new LogRateLimiter({ perWindow: 1, windowMs: 20, onSuppressed: (s) => summaries.push(s) }).start();
    limit.allow('k');
    limit.allow('k');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(summaries).toEqual([{ key: 'k', suppressed: 1, windowMs: 20 }]);
    limit.close();
  });
});
