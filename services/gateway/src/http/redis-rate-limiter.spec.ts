// Against the real redis-server the test run starts (REDIS_TEST_URL).
import { randomUUID } from 'node:crypto';
import { createLogger } from '@recsys/service-kit';
import { RedisServer } from '@recsys/testing';
import { RedisRateLimiter } from './redis-rate-limiter';

const logger = createLogger('gateway-test', 'silent');
const url = () => process.env.REDIS_TEST_URL!;

describe('RedisRateLimiter', () => {
  const limiters: RedisRateLimiter[] = [];
  const limiter = async (perSecond: number, burst: number, prefix: string, onFailOpen?: () => void, at = url()) => {
    const made = new RedisRateLimiter(at, { perSecond, burst }, logger, onFailOpen, prefix);
    limiters.push(made);
    expect(await made.ready(5000)).toBe(true);
    return made;
  };
  afterAll(() => Promise.all(limiters.map((l) => l.close())));

  it('two limiters on one Redis (two replicas) share one bucket per key', async () => {
    const prefix = `test-${randomUUID()}:`;
    const a = await limiter(0.5, 5, prefix);
    const b = await limiter(0.5, 5, prefix);
    const decisions = [];
    for (let i = 0; i < 10; i++) decisions.push(await (i % 2 === 0 ? a : b).take('web'));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
    const refused = decisions.find((d) => !d.allowed);
    expect(refused).toEqual({ allowed: false, retryAfterS: 2 });
    // Another key has its own bucket.
    expect(await b.take('mobile')).toEqual({ allowed: true });
  });

  it('concurrent takes from both replicas never admit more than the burst', async () => {
    const prefix = `test-${randomUUID()}:`;
    const a = await limiter(0.001, 20, prefix);
    const b = await limiter(0.001, 20, prefix);
    const decisions = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).take('web')));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
  });

  it('refills at the rate on Redis time', async () => {
    const prefix = `test-${randomUUID()}:`;
    const a = await limiter(20, 1, prefix);
    expect((await a.take('web')).allowed).toBe(true);
    expect((await a.take('web')).allowed).toBe(false);
    await new Promise((r) => setTimeout(r, 120));
    expect((await a.take('web')).allowed).toBe(true);
  });

  it('lets requests through, counted, when Redis is gone (fail open), and limits again soon after it is back', async () => {
    const server = await RedisServer.start();
    let failOpen = 0;
    const a = await limiter(0.001, 1, `test-${randomUUID()}:`, () => failOpen++, server.url);
    expect((await a.take('web')).allowed).toBe(true);
    expect((await a.take('web')).allowed).toBe(false);
    await server.stop();
    expect((await a.take('web')).allowed).toBe(true);
    expect(failOpen).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1500));
    await server.resume();
    // The client reconnects by itself (every 500 ms at most: service-kit's redisClientOptions, whose spec checks the cap;
    // no wall-clock figure is asserted here), and the limiter limits again.
    const back = performance.now();
    let recovered = false;
    while (!(recovered = await a.ready(100)) && performance.now() - back < 3000);
    const again = [await a.take('mobile'), await a.take('mobile')];
    await a.close();
    await server.destroy();
    expect(recovered).toBe(true);
    expect(again.map((d) => d.allowed)).toEqual([true, false]);
  });
});
