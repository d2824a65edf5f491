import { builtEntry, runNode } from '@recsys/testing';

// Checks bench:tracing's output contract on a tiny run (30 requests per phase); no timing is asserted.
describe('bench:tracing', () => {
  it('ends with one JSON line holding the contracted figures, the sampled phase having exported spans', async () => {
    const result = await runNode(
      builtEntry('test/dist/bench/tracing.bench.js'),
      [],
      { BENCH_REQUESTS: '30', BENCH_ROUNDS: '1', BENCH_HOOK_LOOPS: '10000' },
      60_000,
    );
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const line = result.stdout.trim().split('\n').at(-1)!;
    const figures = JSON.parse(line) as Record<string, number>;
    expect(figures).toMatchObject({ requests_per_phase: 30, rounds: 1, hops_per_request: 2 });
    const positive = [
      'cpu_us_per_request_off',
      'cpu_us_per_request_unsampled',
      'cpu_us_per_request_sampled',
      'cpu_ratio_unsampled',
      'cpu_ratio_sampled',
      'p50_us_off',
      'p50_us_sampled',
      'off_hooks_ns_per_request',
      'off_hooks_share_of_cpu',
      'spans_exported_bytes',
    ];
    expect({ bad: positive.filter((key) => !(Number.isFinite(figures[key]) && figures[key]! > 0)), line }).toEqual({ bad: [], line });
    expect(figures.cpu_ratio_sampled).toBeCloseTo(figures.cpu_us_per_request_sampled! / figures.cpu_us_per_request_off!, 1);
  }, 90_000);
});
