import { ConcurrencyLimit, WINDOW_MS } from './concurrency-limit';

/** One window: `count` answers of `latencyMs` each, `inFlight` requests having been in flight at once; returns the limit after it. */
function window(limit: ConcurrencyLimit, clock: { t: number }, latencyMs: number, inFlight = limit.limit, count = 5): number {
  limit.admitted(inFlight);
  for (let i = 0; i < count; i++) limit.sample(latencyMs, clock.t + (i * WINDOW_MS) / count);
  clock.t += WINDOW_MS;
  return limit.tick(clock.t);
}

describe('ConcurrencyLimit (AIMD against a latency target)', () => {
  it('starts at max and shrinks in proportion while latency is above the target, never below min', () => {
    const changes: number[] = [];
    const limit = new ConcurrencyLimit({ min: 3, max: 32, targetMs: 100 }, (l) => changes.push(l));
    const clock = { t: 0 };
    expect(limit.limit).toBe(32);
    // The first answer opens the window; the limit moves once a whole window has passed.
    expect(limit.sample(400, clock.t)).toBe(32);
    expect(limit.tick(clock.t + WINDOW_MS - 1)).toBe(32);
    limit.admitted(32);
    clock.t += WINDOW_MS;
    // p90 400 ms against 100: at most halved per window.
    expect(limit.tick(clock.t)).toBe(16);
    // p90 125 ms against 100: × 0.8.
    expect(window(limit, clock, 125)).toBe(12);
    expect(window(limit, clock, 1000)).toBe(6);
    expect(window(limit, clock, 1000)).toBe(3);
    expect(window(limit, clock, 1000)).toBe(3);
    expect(changes).toEqual([16, 12, 6, 3]);
  });

  it('grows back by one per window while latency is well under the target and the limit is used, never above max', () => {
    const limit = new ConcurrencyLimit({ min: 2, max: 6, targetMs: 100 });
    const clock = { t: 0 };
    expect(window(limit, clock, 500)).toBe(3);
    expect(window(limit, clock, 500)).toBe(2);
    const seen = [2, 3, 4, 5, 6, 7, 8].map(() => window(limit, clock, 20));
    expect(seen).toEqual([3, 4, 5, 6, 6, 6, 6]);
  });

  it('holds between GROW_BELOW of the target and the target', () => {
    const limit = new ConcurrencyLimit({ min: 1, max: 20, targetMs: 100 });
    const clock = { t: 0 };
    expect(window(limit, clock, 200)).toBe(10);
    expect(window(limit, clock, 85)).toBe(10);
    expect(window(limit, clock, 100)).toBe(10);
    expect(window(limit, clock, 79)).toBe(11);
  });

  it('does not grow while under half of it is used (the load, not the limit, bounds the work)', () => {
    const limit = new ConcurrencyLimit({ min: 1, max: 20, targetMs: 100 });
    const clock = { t: 0 };
    expect(window(limit, clock, 200)).toBe(10);
    expect(window(limit, clock, 10, 4)).toBe(10);
    expect(window(limit, clock, 10, 5)).toBe(11);
  });

  it('does not shrink while under half of it is in flight: a slow or failing stage at low load is not queueing at the gate', () => {
    const changes: number[] = [];
    const limit = new ConcurrencyLimit({ min: 4, max: 32, targetMs: 150 }, (l) => changes.push(l));
    const clock = { t: 0 };
    // A stage hung until its deadline: every answer slow, 20 requests/s, about 10 in flight.
    for (let i = 0; i < 20; i++) expect(window(limit, clock, 600, 10)).toBe(32);
    expect(window(limit, clock, 600, 15)).toBe(32);
    // Once the load uses half of it the same latency shrinks it.
    expect(window(limit, clock, 600, 16)).toBe(16);
    expect(window(limit, clock, 600, 8)).toBe(8);
    expect(window(limit, clock, 600, 3)).toBe(8);
    expect(changes).toEqual([16, 8]);
  });

  it('shrinks when the budget caps the requests in flight under the limit: past saturation they may never fill it', () => {
    // 140 requests/s offered to a pipeline that answers 95/s, every answer cut near the 250 ms budget: about 22 in
    // flight of 32, for as long as the load lasts.
    const limit = new ConcurrencyLimit({ min: 4, max: 32, targetMs: 150 });
    const clock = { t: 0 };
    expect(window(limit, clock, 245, 22)).toBe(19);
    expect(window(limit, clock, 245, 19)).toBe(11);
  });

  it('takes the p90 of the window: one slow request in twenty does not shrink it', () => {
    const limit = new ConcurrencyLimit({ min: 1, max: 20, targetMs: 100 });
    const clock = { t: 0 };
    expect(window(limit, clock, 500)).toBe(10);
    limit.admitted(10);
    for (let i = 0; i < 19; i++) limit.sample(50, (clock.t += 5));
    limit.sample(5000, (clock.t += 4));
    expect(limit.tick((clock.t += 6))).toBe(11);
  });

  it('judges a window without answers on the requests in flight already over the target, which never make it grow', () => {
    const limit = new ConcurrencyLimit({ min: 1, max: 16, targetMs: 100 });
    // An admission opens the window; nothing answered and nothing overdue when it is over: the limit holds.
    limit.admitted(16, 0);
    expect(limit.tick(WINDOW_MS, 16, () => [])).toBe(16);
    // 16 in flight for 400 ms, no answer yet: halved (at most), then × 100 / 125.
    limit.admitted(16, WINDOW_MS);
    expect(limit.tick(2 * WINDOW_MS, 16, () => Array<number>(16).fill(400))).toBe(8);
    limit.admitted(8, 2 * WINDOW_MS);
    expect(limit.tick(3 * WINDOW_MS, 8, () => [125])).toBe(6);
    // Fast answers with one overdue request among them: its latency counts (p90 over the target), no growth.
    limit.admitted(6, 3 * WINDOW_MS);
    for (let i = 0; i < 3; i++) limit.sample(20, 3 * WINDOW_MS + i);
    expect(limit.tick(4 * WINDOW_MS, 6, () => [150])).toBe(4);
  });

  it('refuses bounds out of order', () => {
    expect(() => new ConcurrencyLimit({ min: 0, max: 4, targetMs: 100 })).toThrow(RangeError);
    expect(() => new ConcurrencyLimit({ min: 5, max: 4, targetMs: 100 })).toThrow(RangeError);
    expect(() => new ConcurrencyLimit({ min: 1, max: 4, targetMs: 0 })).toThrow(RangeError);
  });
});
