import { builtEntry, runNode } from '@recsys/testing';

// Checks the benchmark's output contract on a tiny run; no timing is asserted.
describe('bench:features', () => {
  it('ends with one JSON line holding the contracted figures', async () => {
    const result = await runNode(
      builtEntry('test/dist/bench/features.bench.js'),
      [],
      { BENCH_ITEMS: '1500', BENCH_ITERATIONS: '10' },
      60000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const last = result.stdout.trim().split('\n').at(-1)!;
    const figures = JSON.parse(last) as Record<string, number>;
    for (const key of ['grpc_p50_ms', 'grpc_p99_ms', 'redis_p50_ms', 'redis_p99_ms', 'ratio_p50']) {
      expect(Number.isFinite(figures[key])).toBe(true);
      expect(figures[key]).toBeGreaterThan(0);
    }
    expect(figures.ratio_p50).toBeCloseTo(figures.grpc_p50_ms / figures.redis_p50_ms, 1);
  }, 90000);
});

describe('bench:train', () => {
  it('says plainly that it skipped when MovieLens 100K is absent, still ending with one JSON line', async () => {
    const result = await runNode(builtEntry('test/dist/bench/train.bench.js'), [], { ML100K_DIR: '/nonexistent/ml-100k' }, 30000);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/bench:train skipped: MovieLens 100K is not at \/nonexistent\/ml-100k/);
    expect(JSON.parse(lines.at(-1)!)).toEqual({ skipped: true, reason: 'no ML-100K at /nonexistent/ml-100k' });
  });
});
