import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('bench:shed', () => {
  it('ends with one JSON line: CPU per shed request and per unrouted (404) request, the baseline of the same rounds', async () => {
    const result = await runNode(builtEntry('test/dist/bench/shed.bench.js'), [], { BENCH_ROUNDS: '1', BENCH_SECONDS: '1' }, 60000);
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, number | number[]>;
    for (const key of ['cpu_us_per_shed_median', 'baseline_cpu_us_per_404_median', 'shed_over_404']) {
      expect(Number.isFinite(figures[key])).toBe(true);
      expect(figures[key]).toBeGreaterThan(0);
    }
    expect(figures.cpu_us_per_shed).toHaveLength(1);
    expect(figures.baseline_cpu_us_per_404).toHaveLength(1);
    expect(figures.shed_over_404).toBeCloseTo(
      (figures.cpu_us_per_shed_median as number) / (figures.baseline_cpu_us_per_404_median as number),
      2,
    );
  }, 90000);
});

describe('bench:reranking', () => {
  it('ends with one JSON line: CPU and allocation per call of re-ranking and of the protobuf-es baseline, their ratios', async () => {
    const result = await runNode(builtEntry('test/dist/bench/reranking.bench.js'), [], { BENCH_CALLS: '200', BENCH_ROUNDS: '1' }, 60000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(figures).toMatchObject({ candidates: 100, limit: 20, calls: 200 });
    for (const key of ['rerank_cpu_us', 'rerank_allocated_kib', 'baseline_decode_encode_cpu_us', 'baseline_decode_encode_allocated_kib']) {
      expect(Number.isFinite(figures[key])).toBe(true);
      expect(figures[key]).toBeGreaterThan(0);
    }
    expect(figures.cpu_ratio).toBeCloseTo(figures.rerank_cpu_us! / figures.baseline_decode_encode_cpu_us!, 1);
    expect(figures.allocated_ratio).toBeCloseTo(figures.rerank_allocated_kib! / figures.baseline_decode_encode_allocated_kib!, 1);
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

describe('bench:retrieval', () => {
  it('ends with one JSON line holding the contracted figures, on a small catalogue trained for it', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'recsys-bench-retrieval-models-'));
    try {
      const result = await runNode(
        builtEntry('test/dist/bench/retrieval.bench.js'),
        [],
        {
          BENCH_ITEMS: '20000',
          BENCH_USERS: '2000',
          BENCH_INTERACTIONS: '10',
          BENCH_REQUESTS: '20',
          BENCH_WARMUP: '5',
          BENCH_QUERY_SAMPLE: '500',
          BENCH_MODELS_DIR: cache,
        },
        90000,
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines.some((line) => /two-tower 1 trained in [\d.]+ s into /.test(line))).toBe(true);
      const figures = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
      expect(figures).toMatchObject({ items: 20000, requests: 20, model_reused: false, query_sample: 500, failed_channel_reports: 0 });
      for (const key of ['p50_ms', 'p99_ms', 'exact_p50_ms', 'ratio_p50', 'two_tower_only_p50_ms', 'build_s']) {
        expect(Number.isFinite(figures[key])).toBe(true);
        expect(figures[key]).toBeGreaterThanOrEqual(0);
      }
      const recall = figures['ann_recall@100'] as number;
      expect(recall).toBeGreaterThanOrEqual(0);
      expect(recall).toBeLessThanOrEqual(1);
      expect(figures.p50_ms as number).toBeLessThanOrEqual(figures.p99_ms as number);
      expect(figures.ratio_p50).toBeCloseTo((figures.exact_p50_ms as number) / (figures.p50_ms as number), 1);
      // Called alone the service reads each user itself; with the user passed down (as the gateway sends it) it reads
      // none: what is left is the popular list's refresh (once a second), far under one call per request.
      const passed = figures.passed_user as Record<string, number>;
      expect(figures.feature_calls_per_request).toBeGreaterThanOrEqual(1);
      expect(passed.feature_calls_per_request).toBeLessThan(0.5);
      for (const key of ['p50_ms', 'p99_ms', 'service_cpu_ms_per_request']) expect(passed[key]).toBeGreaterThan(0);
      expect(passed.p50_ms).toBeLessThanOrEqual(passed.p99_ms!);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }, 120000);
});

describe('bench:served-layout', () => {
  it('ends with one JSON line: the heap a served layout adds against the full layout, and both sides encode alike', async () => {
    // Just over LARGE_VOCABULARY item ids, so the served side compiles them away.
    const result = await runNode(
      builtEntry('test/dist/bench/served-layout.bench.js'),
      [],
      { BENCH_ITEMS: '70000', BENCH_USERS: '100', BENCH_ROUNDS: '2', BENCH_COLLECTIONS: '3' },
      60000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(figures).toMatchObject({ items: 70000, users: 100, rounds: 2 });
    for (const key of ['baseline_heap_mib', 'baseline_full_gc_ms', 'served_full_gc_ms', 'baseline_buffers_mib', 'served_buffers_mib']) {
      expect(figures[key]).toBeGreaterThan(0);
    }
    // 70,000 strings held against none: the baseline's heap is several MiB, the served layout's a fraction of it.
    expect(figures.baseline_heap_mib).toBeGreaterThan(2);
    expect(figures.served_heap_mib).toBeLessThan(figures.baseline_heap_mib! / 2);
    expect(figures.heap_ratio).toBeCloseTo(figures.served_heap_mib! / figures.baseline_heap_mib!, 2);
    // The recent items and the history hold equal vocabularies (separate arrays once parsed): one table served, not two.
    expect(figures.served_buffers_mib).toBeLessThan(figures.baseline_buffers_mib! * 0.75);
  }, 90000);
});

describe('bench:id-table', () => {
  it('ends with one JSON line: per size, each read one by one (the baseline) and in passes, and their ratio', async () => {
    const result = await runNode(
      builtEntry('test/dist/bench/id-table.bench.js'),
      [],
      { BENCH_SIZES: '2000,5000', BENCH_REQUESTS: '20', BENCH_ROUNDS: '1' },
      60000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(figures).toMatchObject({ lookups_per_request: 300, requests: 20, rounds: 1, dim: 32 });
    for (const size of [2000, 5000]) {
      for (const [base, next, ratio] of [
        ['rowof', 'rowsof', 'speedup'],
        ['strings', 'ranges', 'ranges_speedup'],
        ['idat', 'idsat', 'ids_speedup'],
        ['score', 'touched_score', 'touch_speedup'],
        ['arrays', 'records', 'records_speedup'],
      ]) {
        const keys = [`${base}_us_per_request_${size}`, `${next}_us_per_request_${size}`, `${ratio}_${size}`];
        for (const key of keys) {
          expect(Number.isFinite(figures[key])).toBe(true);
          expect(figures[key]).toBeGreaterThan(0);
        }
        expect(figures[keys[2]!]).toBeCloseTo(figures[keys[0]!]! / figures[keys[1]!]!, 1);
      }
    }
  }, 90000);
});
