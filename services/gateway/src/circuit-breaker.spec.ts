import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';

describe('circuit breaker', () => {
  it('opens after consecutive failures, skips calls for the cool-down, then lets one probe decide', () => {
    let now = 0;
    const changes: CircuitState[] = [];
    const breaker = new CircuitBreaker(
      { failures: 3, openMs: 1000, minFailingMs: 0 },
      (s) => changes.push(s),
      () => now,
    );
    breaker.failure();
    breaker.failure();
    breaker.success(); // a success in between resets the count
    breaker.failure();
    breaker.failure();
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    expect(breaker.retryInMs).toBe(1000);

    now = 1000;
    expect(breaker.state).toBe('half_open');
    expect(breaker.allow()).toBe(true); // the probe
    expect(breaker.allow()).toBe(false); // only one at a time
    breaker.failure(); // the probe failed: open again for a whole cool-down
    expect(breaker.state).toBe('open');
    now = 1999;
    expect(breaker.allow()).toBe(false);
    now = 2000;
    expect(breaker.allow()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
    expect(changes).toEqual(['open', 'open', 'closed']);
  });

  it('a probe that ends without a verdict frees the slot for the next one', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 1, openMs: 10, minFailingMs: 0 }, undefined, () => now);
    breaker.failure();
    now = 10;
    expect(breaker.allow()).toBe(true);
    breaker.release();
    expect(breaker.allow()).toBe(true);
  });

  it('never opens with failures = 0', () => {
    const breaker = new CircuitBreaker({ failures: 0, openMs: 1000, minFailingMs: 0 });
    for (let i = 0; i < 100; i++) breaker.failure();
    expect(breaker.state).toBe('closed');
    expect(breaker.allow()).toBe(true);
  });

  it('does not open for a stage that still answered within minFailingMs (loaded, not down)', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 3, openMs: 1000, minFailingMs: 500 }, undefined, () => now);
    now = 100;
    breaker.success();
    now = 200;
    for (let i = 0; i < 10; i++) breaker.failure();
    expect(breaker.state).toBe('closed'); // ten failures in a row, but a success 100 ms ago
    now = 600;
    breaker.failure(); // nothing answered for 500 ms
    expect(breaker.state).toBe('open');
  });
});
