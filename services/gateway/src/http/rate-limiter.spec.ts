import { RateLimiter } from './rate-limiter.js';

/** A clock the test moves by hand. */
function manualClock(startMs = 1_000) {
  let now = startMs;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter', () => {
  it('admits a burst, then refuses with whole seconds to wait, then refills at the rate', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 2, burst: 3 }, clock.now);
    for (let i = 0; i < 3; i++) expect(limiter.take('web')).toEqual({ allowed: true });
    expect(limiter.take('web')).toEqual({ allowed: false, retryAfterS: 1 });
    clock.advance(499);
    expect(limiter.take('web').allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take('web')).toEqual({ allowed: true });
    expect(limiter.take('web').allowed).toBe(false);
    // Refill never exceeds the burst.
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) expect(limiter.take('web').allowed).toBe(true);
    expect(limiter.take('web').allowed).toBe(false);
  });

  it('keeps one bucket per key', () => {
    const limiter = new RateLimiter({ perSecond: 1, burst: 1 }, manualClock().now);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('rounds the wait up to whole seconds, at least 1', () => {
    const limiter = new RateLimiter({ perSecond: 0.25, burst: 1 }, manualClock().now);
    limiter.take('slow');
    expect(limiter.take('slow')).toEqual({ allowed: false, retryAfterS: 4 });
  });

  it('is off at 0 per second', () => {
    const limiter = new RateLimiter({ perSecond: 0, burst: 1 }, manualClock().now);
    for (let i = 0; i < 100; i++) expect(limiter.take('web').allowed).toBe(true);
    expect(limiter.size).toBe(0);
  });

  it('drops idle full buckets, keeps the ones still refilling', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perSecond: 1, burst: 100 }, clock.now);
    for (let i = 0; i < 1000; i++) limiter.take(`key-${i}`);
    for (let i = 0; i < 100; i++) limiter.take('busy');
    expect(limiter.size).toBe(1001);
    clock.advance(11_000);
    limiter.take('other');
    // Every one-token-short bucket refilled; "busy" is still 89 short.
    expect(limiter.size).toBe(2);
    expect(limiter.take('busy').allowed).toBe(true);
  });

  it('refuses a nonsensical configuration', () => {
    expect(() => new RateLimiter({ perSecond: -1, burst: 1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ perSecond: 1, burst: 0 })).toThrow(RangeError);
  });
});
