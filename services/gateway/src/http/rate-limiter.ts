export interface RateLimit {
  /** Sustained requests per second (refill rate); 0 turns limiting off. */
  perSecond: number;
  /** Requests a key may send at once (bucket size). */
  burst: number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterS: number };

/** A per-key limiter: this process's buckets (RateLimiter), or buckets every gateway replica shares (RedisRateLimiter). */
export interface KeyRateLimiter {
  readonly enabled: boolean;
  take(key: string): RateDecision | Promise<RateDecision>;
  /** A shared limiter: whether it connected within timeoutMs. */
  ready?(timeoutMs?: number): Promise<boolean>;
  close?(): Promise<void>;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

const { ceil, max, min } = Math;

/** How often idle buckets are swept; a full bucket is the same as no bucket, so dropping it changes nothing. */
const SWEEP_INTERVAL_MS = 10_000;

/** A token bucket per key name, on an injectable millisecond clock. */
export class RateLimiter implements KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(limit.perSecond >= 0) || !Number.isFinite(limit.perSecond)) throw new RangeError('perSecond must be a finite number >= 0');
    if (!(limit.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.lastSweepMs = now();
  }

  get enabled(): boolean {
    return this.limit.perSecond > 0;
  }

  /** Buckets held (for tests and metrics): keys seen recently whose bucket is not yet full again. */
  get size(): number {
    return this.buckets.size;
  }

  take(key: string): RateDecision {
    if (!this.enabled) return { allowed: true };
    const now = this.now();
    if (now - this.lastSweepMs >= SWEEP_INTERVAL_MS) this.sweep(now);
    const bucket = this.buckets.get(key) ?? { tokens: this.limit.burst, updatedMs: now };
    this.refill(bucket, now);
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterS: max(1, ceil((1 - bucket.tokens) / this.limit.perSecond)) };
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsedMs = max(0, now - bucket.updatedMs);
    bucket.tokens = min(this.limit.burst, bucket.tokens + (elapsedMs * this.limit.perSecond) / 1000);
    bucket.updatedMs = now;
  }

  private sweep(now: number): void {
    this.lastSweepMs = now;
    for (const [key, bucket] of this.buckets) {
      this.refill(bucket, now);
      if (bucket.tokens >= this.limit.burst) this.buckets.delete(key);
    }
  }
}
