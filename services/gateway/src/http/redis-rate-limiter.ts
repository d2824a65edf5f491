import { redisClientOptions, type Logger } from '@recsys/service-kit';
import { Redis } from 'ioredis';
import type { KeyRateLimiter, RateDecision, RateLimit } from './rate-limiter.js';

/**
 * One token bucket per key in a Redis hash, refilled and taken in one script so that replicas never race: the clock is
 * Redis's own (TIME), so replicas whose clocks differ still share one refill rate. Returns {allowed, retry-after ms}.
 */
const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
`;

/** A limiter call that Redis has not answered within this long is let through (see take). */
const COMMAND_TIMEOUT_MS = 100;

type Client = Redis & { takeToken(key: string, rate: number, burst: number): Promise<[number, number]> };

/**
 * The per-key token bucket shared by every gateway replica through one Redis (RATE_LIMIT_REDIS_URL), so a key's limit
 * holds however many replicas its calls spread over. When Redis cannot answer, calls are let through (fail open: the
 * limiter guards fairness, not availability) and each such call is counted and logged at most once per interval.
 */
export class RedisRateLimiter implements KeyRateLimiter {
  private readonly client: Client;
  private lastWarnMs = -Infinity;

  constructor(
    url: string,
    private readonly limit: RateLimit,
    private readonly logger: Logger,
    private readonly onFailOpen: () => void = () => undefined,
    private readonly prefix = 'recsys:ratelimit:',
  ) {
    if (!(limit.perSecond >= 0) || !Number.isFinite(limit.perSecond)) throw new RangeError('perSecond must be a finite number >= 0');
    if (!(limit.burst >= 1)) throw new RangeError('burst must be >= 1');
    // No retry of a dropped command: the call fails open at once instead.
    this.client = new Redis(url, redisClientOptions({ commandTimeoutMs: COMMAND_TIMEOUT_MS, retriesPerRequest: 0 })) as Client;
    this.client.defineCommand('takeToken', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    // Connection errors surface on the calls (fail open); the client's own event would otherwise be unhandled.
    this.client.on('error', () => undefined);
  }

  /** Resolves true once connected, false when that took longer than timeoutMs (calls fail open meanwhile). */
  ready(timeoutMs = 2000): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.client.once('ready', onReady);
    });
  }

  get enabled(): boolean {
    return this.limit.perSecond > 0;
  }

  async take(key: string): Promise<RateDecision> {
    if (!this.enabled) return { allowed: true };
    try {
      const [allowed, waitMs] = await this.client.takeToken(`${this.prefix}${key}`, this.limit.perSecond, this.limit.burst);
      return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
    } catch (error) {
      this.onFailOpen();
      const now = performance.now();
      if (now - this.lastWarnMs >= 10_000) {
        this.lastWarnMs = now;
        this.logger.warn({ err: error }, 'rate limiter: Redis did not answer; requests are let through until it does');
      }
      return { allowed: true };
    }
  }

  async close(): Promise<void> {
    // Closed already: a second disconnect() would leave ioredis's 2 s stream-destroy timer behind.
    if (this.client.status === 'end') return;
    // quit() waits for a connection that may never come back; a client not connected just stops reconnecting.
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }
}
