import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtEntry, runNode, trainedModels } from '@recsys/testing';

// Checks bench:gateway's output contract on a tiny run (the test models, 20 requests); no timing is asserted.
describe('bench:gateway', () => {
  it('ends with one JSON line holding the contracted figures', async () => {
    const models = await trainedModels();
    const workDir = mkdtempSync(join(tmpdir(), 'recsys-bench-gateway-'));
    try {
      const result = await runNode(
        builtEntry('test/dist/bench/gateway.bench.js'),
        [],
        { BENCH_MODELS_DIR: models.root, BENCH_WORK_DIR: workDir, BENCH_REQUESTS: '20', BENCH_WARMUP: '5' },
        90_000,
      );
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
      const line = result.stdout.trim().split('\n').at(-1)!;
      const figures = JSON.parse(line) as Record<string, number>;
      expect(figures).toMatchObject({ requests: 20, k: 20 });
      expect(Number.isInteger(figures.degraded_requests)).toBe(true);
      expect(Number.isInteger(figures.degraded_requests_concurrent)).toBe(true);
      expect(figures.concurrency).toBe(8);
      const positive = [
        'p50_ms',
        'p99_ms',
        'floor_p50_ms',
        'ratio_p50',
        'qps',
        'qps_concurrent',
        'p50_ms_concurrent',
        'p99_ms_concurrent',
        'gateway_total_p50_ms',
        ...['retrieval', 'preranking', 'ranking', 'reranking'].map((stage) => `${stage}_p50_ms`),
        ...['embed', 'search', 'prerank', 'rank'].map((part) => `floor_${part}_p50_ms`),
        ...['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'].map((service) => `${service}_rss_mib`),
      ];
      // All of them at once, with the whole line, so that a failure says which and what else was measured.
      expect({ bad: positive.filter((key) => !(Number.isFinite(figures[key]) && figures[key]! > 0)), line }).toEqual({ bad: [], line });
      expect(figures.p50_ms).toBeLessThanOrEqual(figures.p99_ms!);
      expect(figures.ratio_p50).toBeCloseTo(figures.p50_ms! / figures.floor_p50_ms!, 1);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 120_000);
});
