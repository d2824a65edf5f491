/**
 * An adaptive concurrency limit (AIMD against a latency target, like Netflix concurrency-limits' AIMDLimit and
 * Envoy's adaptive concurrency filter): the requests admission control lets work at once move with their measured
 * latency. Each window (WINDOW_MS from its first answer or admission) the p90 of the latencies finished in it (and of
 * the requests still in flight already over the target) is compared with the target: above it the limit shrinks in
 * proportion (limit × target / p90, at most halved per window), well under it (below GROW_BELOW of the target) it grows
 * by one. Either only in a window that used at least half of it: latency with fewer in flight is not queueing at this
 * gate (a stage down or timing out) and shedding cannot cure it. It never leaves min..max. A static limit cannot fit
 * every machine: by Little's law a fixed 32 in flight at 50 answers/s is 640 ms per request, where the right number
 * on that machine is answers/s × target.
 */
export interface ConcurrencyLimitConfig {
  /** The limit never goes under min nor over max (where it starts). */
  min: number;
  max: number;
  /** The latency the limit steers to, ms (the p90 of each window). */
  targetMs: number;
}

/** How often the limit moves, ms: short enough to follow a load step within a second, long enough for a few samples. */
export const WINDOW_MS = 100;
/** Grows only while the window's p90 is under this share of the target: a band where the limit holds. */
export const GROW_BELOW = 0.8;
/** The most one window shrinks the limit by (a multiplier). */
export const MAX_SHRINK = 0.5;
const PERCENTILE = 0.9;

export class ConcurrencyLimit {
  private value: number;
  private samples: number[] = [];
  private windowStart: number | undefined;
  private peakInFlight = 0;

  constructor(
    private readonly config: ConcurrencyLimitConfig,
    private readonly onChange: (limit: number) => void = () => undefined,
  ) {
    if (!Number.isInteger(config.min) || config.min < 1) throw new RangeError('min must be an integer >= 1');
    if (!Number.isInteger(config.max) || config.max < config.min) throw new RangeError('max must be an integer >= min');
    if (!(config.targetMs > 0)) throw new RangeError('targetMs must be > 0');
    this.value = config.max;
  }

  get limit(): number {
    return this.value;
  }

  /**
   * The requests in flight just after one was admitted: whether the limit was used, which alone lets it grow. With
   * `nowMs` an admission also opens a window (after a load step the first answers may take longer than a window).
   */
  admitted(inFlight: number, nowMs?: number): void {
    if (inFlight > this.peakInFlight) this.peakInFlight = inFlight;
    if (nowMs !== undefined) this.windowStart ??= nowMs;
  }

  /**
   * One finished request's latency, ms, at `nowMs`, with `inFlight` still in flight; a window that is over is judged
   * first (without it), and the sample opens the next. Returns the limit.
   */
  sample(latencyMs: number, nowMs: number, inFlight = 0, overdue?: () => readonly number[]): number {
    this.tick(nowMs, inFlight, overdue);
    this.windowStart ??= nowMs;
    this.samples.push(latencyMs);
    return this.value;
  }

  /**
   * Moves the limit if the window (from its first sample or admission) is over. Returns the limit. `overdue` gives the
   * latencies so far of the requests still in flight that are already over the target, each once (the caller does not
   * sample them again when they finish): each will be at least that late, so they join the window's answers as a lower
   * bound of their latency, which can only underestimate the p90, and, over the target, never lets the limit grow.
   * Past a load step the first answers come only after a whole request's time at the old limit; the requests already
   * late say so within a window of passing the target.
   */
  tick(nowMs: number, inFlight = 0, overdue?: () => readonly number[]): number {
    if (this.windowStart === undefined || nowMs - this.windowStart < WINDOW_MS) return this.value;
    const late = overdue?.() ?? [];
    // Nothing answered and nothing late (admitted, still under the target): nothing to judge yet, the window stays open.
    if (this.samples.length === 0 && late.length === 0) return this.value;
    const sorted = (late.length > 0 ? this.samples.concat(late) : this.samples).sort((a, b) => a - b);
    this.samples = [];
    this.windowStart = undefined;
    const p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * PERCENTILE))]!;
    // The window used at least half of the limit. Only then does latency move it either way (Gradient2's test for a
    // load-bound limit): a high latency with fewer in flight is not waiting at this gate (a stage timing out, a
    // dependency down, a slow machine at low load), and shrinking would shed load the gateway carries, turning a
    // degraded answer into a refusal. Half, not all of it: past saturation the request budget caps each request's
    // time, so the requests in flight (rate × budget) may never reach a limit set far above what the machine serves
    // and it would hold there while every answer came late and degraded (a load step from capacity to 1.5× it
    // admitted up to 22 of 32 for a second, answered past the budget).
    const used = this.peakInFlight * 2 >= this.value;
    // What is still in flight belongs to the next window too.
    this.peakInFlight = inFlight;
    let next = this.value;
    if (p90 > this.config.targetMs && used) next = Math.floor(this.value * Math.max(MAX_SHRINK, this.config.targetMs / p90));
    else if (p90 < this.config.targetMs * GROW_BELOW && used) next = this.value + 1;
    next = Math.min(this.config.max, Math.max(this.config.min, next));
    if (next !== this.value) {
      this.value = next;
      this.onChange(next);
    }
    return next;
  }
}
