import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtEntry, runNode, trainedModels } from '@recsys/testing';
import { wrkLoadResult } from '../bench/load-result';
import { ticksToMs } from '../bench/stats';

// Checks bench:pipeline's output contract on a tiny run (the test models, one second per level, both modes, wrk and the
// gRPC load generator as at full size); no timing is asserted.
describe('bench:pipeline', () => {
  it('ends with one JSON line holding the contracted figures for both modes, and writes its markdown table', async () => {
    const models = await trainedModels();
    const workDir = mkdtempSync(join(tmpdir(), 'recsys-bench-pipeline-'));
    const results = join(workDir, 'pipeline.md');
    try {
      const result = await runNode(
        builtEntry('test/dist/bench/pipeline.bench.js'),
        [],
        {
          BENCH_MODELS_DIR: models.root,
          BENCH_WORK_DIR: workDir,
          BENCH_RESULTS: results,
          BENCH_DURATION_S: '1',
          BENCH_WARMUP_S: '1',
          BENCH_FLOOR_REQUESTS: '10',
          BENCH_IDLE_S: '1',
        },
        240_000,
      );
      // A run that failed or was killed at the limit shows where it was.
      const tail = result.code === 0 ? '' : result.stdout.trim().split('\n').slice(-30).join('\n');
      expect({ code: result.code, signal: result.signal, stderr: result.stderr, tail }).toEqual({
        code: 0,
        signal: null,
        stderr: '',
        tail: '',
      });
      const line = result.stdout.trim().split('\n').at(-1)!;
      const figures = JSON.parse(line) as Record<string, unknown>;
      expect(figures).toMatchObject({
        items: 200,
        node_version: process.versions.node,
        settings_split: 'the defaults',
        settings_all_in_one: 'INDEX_SEARCH_WORKERS=1, PRERANKING_SESSION_THREAD=main, RANKING_SESSION_THREAD=main',
      });
      const bad: string[] = [];
      const positive = (key: string, value: unknown) => {
        if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) bad.push(key);
      };
      for (const key of ['floor_p50_ms', 'feature_calls_per_request', 'grpc_calls_per_request', 'log_write_ms_p99', 'events_logged'])
        positive(key, figures[key]);
      for (const mode of ['mode_split', 'mode_all_in_one']) {
        const m = figures[mode] as Record<string, number> | undefined;
        if (m === undefined) {
          bad.push(mode);
          continue;
        }
        for (const n of [1, 8, 32, 64]) {
          for (const key of [`qps_c${n}`, `p50_ms_c${n}`, `p99_ms_c${n}`]) positive(`${mode}.${key}`, m[key]);
          const degraded = m[`degraded_c${n}`];
          if (!(typeof degraded === 'number' && degraded >= 0 && degraded <= 1)) bad.push(`${mode}.degraded_c${n}`);
          if (!(m[`p50_ms_c${n}`]! <= m[`p99_ms_c${n}`]!)) bad.push(`${mode}.p50 <= p99 at c${n}`);
        }
        for (const key of ['cpu_ms_per_request', 'p50_ms_c1_over_floor', 'log_write_ms_p99', 'events_logged'])
          positive(`${mode}.${key}`, m[key]);
        for (const key of ['max_qps_p99_under_100ms', 'max_qps_p99_under_50ms'])
          if (!(typeof m[key] === 'number' && m[key] >= 0)) bad.push(`${mode}.${key}`);
        // The CPU beside the pipeline (10 ms ticks: a one-second level's may be 0), the ceiling it leaves, the busiest loop.
        for (const key of ['load_generator_cpu_ms_per_request', 'redis_cpu_ms_per_request'])
          if (!(typeof m[key] === 'number' && Number.isFinite(m[key]) && m[key] >= 0)) bad.push(`${mode}.${key}`);
        positive(`${mode}.cpu_ceiling_qps`, m.cpu_ceiling_qps);
        if (!(m.event_loop_busy_c32! > 0 && m.event_loop_busy_c32! <= 1.1)) bad.push(`${mode}.event_loop_busy_c32`);
      }
      // CPU at rest of every process of each mode (ms per second; /proc counts 10 ms ticks, so an idle one may show 0).
      const processes = ['features', 'retrieval', 'preranking', 'ranking', 'reranking', 'gateway'].map((name) => `split_${name}`);
      for (const key of [...processes, 'all-in-one_all-in-one'].map((p) => `${p}_idle_cpu_ms_per_s`)) {
        const value = figures[key];
        if (!(typeof value === 'number' && value >= 0 && value < 1000)) bad.push(key);
      }
      // All at once, with the whole line, so that a failure says which and what else was measured.
      expect({ bad, line }).toEqual({ bad: [], line });
      const table = readFileSync(results, 'utf8');
      expect(table).toContain('| all-in-one | REST (wrk) | 64 |');
      expect(table).toContain('| split | gRPC | 1 |');
      expect(table).toMatch(/CPU ceiling at 32 REST clients: split [\d.]+ requests\/s \([\d.]+ ms per answer\), all-in-one [\d.]+/);
      // Every level's row: load generator / Redis CPU, and the busiest event loop with its process.
      expect(table).toMatch(/\| all-in-one \| REST \(wrk\) \| 32 \|.* \| [\d.]+ \/ [\d.]+ \| [\d.]+ \(all-in-one\) \| /);
      expect(table).toMatch(
        /\| split \| gRPC \| 8 \|.* \| [\d.]+ \/ [\d.]+ \| [\d.]+ \((features|retrieval|preranking|ranking|reranking|gateway)\) \| /,
      );
      expect(table).toMatch(
        /CPU at rest after the warm-up \(ms per second, 1 s\): split: features [\d.]+, .*; all-in-one: all-in-one [\d.]+\./,
      );
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 260_000);
});

describe("bench:pipeline's REST level", () => {
  it('counts the answered recommendations only: refusals are failed requests, not requests/s', () => {
    // 6 s of wrk: 1,909 responses of which 1,128 were 429 while the gateway shed (a 20k run at 64 clients), 325 of the
    // 781 answers with a fallback.
    const level = wrkLoadResult({
      answered: 1909,
      non200: 1128,
      degraded: 325,
      socket_errors: 2,
      duration_us: 6_000_000,
      p50_us: 146_240,
      p95_us: 391_839,
      p99_us: 444_185,
    });
    expect(level).toEqual({ requests: 781, qps: 130.2, p50_ms: 146.24, p95_ms: 391.839, p99_ms: 444.185, degraded: 0.4161, failed: 1130 });
  });

  it("carries wrk's own CPU time from its clock ticks, and none where the script could not read it", () => {
    const counts = { answered: 100, non200: 0, degraded: 0, socket_errors: 0, duration_us: 1_000_000, p50_us: 1, p95_us: 2, p99_us: 3 };
    expect(wrkLoadResult({ ...counts, cpu_ticks: 25 }).generatorCpuMs).toBe(ticksToMs(25));
    expect(ticksToMs(25)).toBeGreaterThan(0);
    expect(wrkLoadResult({ ...counts, cpu_ticks: -1 })).not.toHaveProperty('generatorCpuMs');
    expect(wrkLoadResult(counts)).not.toHaveProperty('generatorCpuMs');
  });
});
