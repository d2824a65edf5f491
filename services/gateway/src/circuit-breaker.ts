/** closed: calls go; open: calls are skipped until the cool-down ends; half_open: one probe call decides. */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; 0 never opens it. */
  failures: number;
  /** How long an open circuit skips the stage before one probe call is let through. */
  openMs: number;
  /**
   * How long the stage must have gone without a success before it opens: a stage that is down or hung has
   * none, an overloaded one still answers some calls (adaptive candidate counts deal with load, not this).
   */
  minFailingMs: number;
}

/**
 * Stops calling a stage that keeps failing (down, or hung past its deadline) for a cool-down, so requests spend
 * their budget on the stages that answer instead of waiting out a dead one; then one probe call at a time
 * decides whether it is back.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private opened = false;
  private openUntil = 0;
  private probing = false;
  private lastSuccess: number;

  constructor(
    private readonly options: CircuitBreakerOptions,
    private readonly onChange: (state: CircuitState) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSuccess = now();
  }

  get state(): CircuitState {
    if (!this.opened) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half_open';
  }

  /** Milliseconds until an open circuit lets a probe through. */
  get retryInMs(): number {
    return Math.max(0, this.openUntil - this.now());
  }

  /** Whether this call may go: always when closed; when half-open, only one probe at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    const was = this.opened;
    this.consecutive = 0;
    this.opened = false;
    this.probing = false;
    this.lastSuccess = this.now();
    if (was) this.onChange('closed');
  }

  failure(): void {
    this.consecutive++;
    this.probing = false;
    const now = this.now();
    const failing = this.consecutive >= this.options.failures && now - this.lastSuccess >= this.options.minFailingMs;
    if (this.options.failures > 0 && (this.opened || failing)) {
      this.opened = true;
      this.openUntil = now + this.options.openMs;
      this.onChange('open');
    }
  }

  /** A call that ended without saying anything about the stage's health (skipped, shed load, a bad request). */
  release(): void {
    this.probing = false;
  }
}
