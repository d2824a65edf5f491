import type { Logger, ServiceMetrics } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';
import { ApiKeyStore } from './api-keys.js';
import { RateLimitedError, UnauthenticatedError } from './errors.js';
import { RateLimiter, type KeyRateLimiter } from './rate-limiter.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

// prom-client is service-kit's dependency, not the gateway's: name its Counter through ServiceMetrics.
type Counter = ReturnType<ServiceMetrics['counter']>;

export interface AccessCounters {
  rateLimited: Counter;
  authFailures: Counter;
  limiterFailOpen: Counter;
}

/** The access counters of a registry, created once: the HTTP and gRPC transports share them. */
export function accessCounters(metrics: ServiceMetrics): AccessCounters {
  const existing = <T>(name: string) => metrics.registry.getSingleMetric(name) as T | undefined;
  return {
    rateLimited:
      existing<Counter>('gateway_rate_limited_total') ??
      metrics.counter('gateway_rate_limited_total', 'Requests refused by the rate limiter, by API key name', ['key']),
    authFailures:
      existing<Counter>('gateway_auth_failures_total') ??
      metrics.counter('gateway_auth_failures_total', 'Requests refused for a missing or unknown API key'),
    limiterFailOpen:
      existing<Counter>('gateway_rate_limiter_fail_open_total') ??
      metrics.counter(
        'gateway_rate_limiter_fail_open_total',
        'Requests let through because the shared (Redis) rate limiter did not answer',
      ),
  };
}

/**
 * API key check then rate limit, shared by both transports so that one key has one budget whichever it
 * calls through. Create one per process and hand it to GrpcAccess and startHttpServer.
 */
export class AccessControl {
  private readonly counters: AccessCounters;

  constructor(
    private keys: ApiKeyStore,
    readonly limiter: KeyRateLimiter,
    metrics: ServiceMetrics,
    private readonly logger: Logger,
  ) {
    this.counters = accessCounters(metrics);
  }

  static fromConfig(access: AccessConfig, metrics: ServiceMetrics, logger: Logger, now?: () => number): AccessControl {
    const keys = ApiKeyStore.fromConfig(access, logger);
    const limit = { perSecond: access.rateLimitPerSecond, burst: access.rateLimitBurst };
    const counters = accessCounters(metrics);
    const limiter = access.rateLimitRedisUrl
      ? new RedisRateLimiter(access.rateLimitRedisUrl, limit, logger, () => counters.limiterFailOpen.inc())
      : new RateLimiter(limit, now);
    return new AccessControl(keys, limiter, metrics, logger);
  }

  /** The key names accepted now. */
  get keyNames(): string[] {
    return this.keys.names;
  }

  /**
   * Reads the keys again (a rotated Kubernetes Secret, an edited env file) and swaps them in at once; a file that
   * does not validate leaves the current keys serving and is reported. Returns whether the keys were replaced.
   */
  reloadKeys(access: AccessConfig): boolean {
    try {
      const next = ApiKeyStore.fromConfig(access);
      const before = this.keys.names;
      this.keys = next;
      this.logger.info({ keys: next.names, before }, 'API keys reloaded');
      return true;
    } catch (error) {
      this.logger.error({ err: error }, 'API keys not reloaded: the new keys do not validate; the previous keys still serve');
      return false;
    }
  }

  /** Waits (up to timeoutMs) for a shared limiter to connect; logs when it did not (calls are let through until it does). */
  async ready(timeoutMs = 2000): Promise<void> {
    if (this.limiter.ready && !(await this.limiter.ready(timeoutMs)))
      this.logger.warn({ timeoutMs }, 'rate limiter: Redis not reachable yet; requests are let through until it is');
  }

  /** Closes the shared limiter's Redis connection, if any. */
  async close(): Promise<void> {
    await this.limiter.close?.();
  }

  /** The caller's key name; rejects with UnauthenticatedError (no or unknown key) or RateLimitedError. */
  async admit(presented: string | undefined, method: string): Promise<string> {
    const key = this.keys.authenticate(presented);
    if (!key) {
      this.counters.authFailures.inc();
      this.logger.debug({ method, keyPresented: presented !== undefined }, 'request refused: missing or unknown API key');
      throw new UnauthenticatedError(
        presented === undefined
          ? 'an API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>"'
          : 'the API key is not valid',
      );
    }
    const decision = await this.limiter.take(key.name);
    if (!decision.allowed) {
      this.counters.rateLimited.inc({ key: key.name });
      throw new RateLimitedError(key.name, decision.retryAfterS);
    }
    return key.name;
  }
}
