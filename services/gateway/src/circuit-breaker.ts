/** closed: calls go; open: calls are skipped until the cool-down ends; half_open: one probe call decides. */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; 0 never opens it. */
  failures: number;
  /** How long an open circuit skips the stage before one probe call is let through. */
  openMs: number;
}

/**
 * Stops calling a stage that keeps failing (down, or hung past its deadline) for a cool-down, so requests spend
 * their budget on the stages that answer instead of waiting out a dead one; then one probe call at a time
 * decides whether it is back.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly options: CircuitBreakerOptions,
    private readonly onChange: (state: CircuitState) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (this.options.failures === 0 || this.consecutive < this.options.failures) return 'closed';
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
    const was = this.state;
    this.consecutive = 0;
    this.probing = false;
    if (was !== 'closed') this.onChange('closed');
  }

  failure(): void {
    this.consecutive++;
    this.probing = false;
    if (this.options.failures > 0 && this.consecutive >= this.options.failures) {
      this.openUntil = this.now() + this.options.openMs;
      this.onChange('open');
    }
  }

  /** A call that ended without saying anything about the stage's health (skipped, shed load, a bad request). */
  release(): void {
    this.probing = false;
  }
}
