import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtEntry, runNode, trainedModels } from '@recsys/testing';

// test:resilience's short form (RESILIENCE_FORM=short) as CI runs it: every service as a process on its own real
// redis-server, REST and gRPC clients at a steady rate, one stage killed (-9) and restarted, one ranking model published
// under load, and the fuzz suite's short form (the jest run's one fuzz pass: REST and every RPC of every service, on the
// pipeline the fuzz script launches). Targets asserted: no gateway 5xx, no request lost, no degraded or failed answer
// during the swap, clean answers again after the restart; no fuzz 5xx or crash, every refusal naming what it is about.
// No timing is asserted (the 2 s recovery target is judged by the full run).
describe('test:resilience (short form)', () => {
  it('survives a kill -9 and a model swap under steady load, and ends with the contracted JSON line', async () => {
    const models = await trainedModels();
    const workDir = mkdtempSync(join(tmpdir(), 'recsys-resilience-'));
    try {
      const result = await runNode(
        builtEntry('test/dist/resilience/run.js'),
        [],
        { RESILIENCE_FORM: 'short', RESILIENCE_MODELS_DIR: models.root, RESILIENCE_WORK_DIR: workDir },
        110_000,
      );
      const lines = result.stdout.trim().split('\n');
      const summary = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
      for (const key of [
        'faults',
        'requests',
        'gateway_5xx',
        'lost',
        'degraded',
        'degraded_during_swap',
        'max_recovery_s',
        'fuzz_cases',
        'fuzz_5xx',
        'crashes',
        'shed_p99_ms_at_2x_capacity',
        'soak_minutes',
        'soak_rss_growth_pct',
      ])
        expect(summary).toHaveProperty(key);
      expect(summary).toMatchObject({
        form: 'short',
        faults: 2,
        gateway_5xx: 0,
        lost: 0,
        degraded_during_swap: 0,
        crashes: 0,
        soak_minutes: 0,
      });
      expect(summary.requests as number).toBeGreaterThan(0);
      // Recovered: some clean answer came after the last fallback (max_recovery_s is null otherwise).
      expect(typeof summary.max_recovery_s).toBe('number');
      // The kill was felt (answers fell back to the pre-ranking order) and the swap served the new version.
      expect(result.stdout).toMatch(/\| kill -9 ranking \| split \|[^\n]*RANKING: pre-ranking order/);
      expect(result.stdout).toMatch(/\| publish dlrm \| split \|[^\n]*dlrm v2 serves/);
      // The fuzz part, from its section of the report (## Fuzz: the figures, by target, by status, then any findings).
      const fuzzAt = lines.indexOf('## Fuzz');
      expect(fuzzAt).toBeGreaterThan(0);
      const after = (prefix: string) => JSON.parse(lines.find((l, i) => i > fuzzAt && l.startsWith(prefix))!.slice(prefix.length));
      const figures = JSON.parse(lines[fuzzAt + 2]!) as { fuzz_cases: number; fuzz_5xx: number; crashes: number };
      const byTarget = after('by target: ') as Record<string, number>;
      const byStatus = after('by status: ') as Record<string, number>;
      const findings = lines.filter((l) => l.startsWith('finding: '));
      // grpc-js's own answers to malformed frames are listed apart (see fuzz.ts); everything else must be clean.
      expect(findings.filter((f) => !f.includes('grpc-js transport answer'))).toEqual([]);
      expect(figures).toMatchObject({ fuzz_5xx: 0, crashes: 0 });
      expect(figures.fuzz_cases).toBeGreaterThan(400);
      expect(summary).toMatchObject({ fuzz_cases: figures.fuzz_cases, fuzz_5xx: 0 });
      for (const service of ['gateway', 'features', 'retrieval', 'preranking', 'ranking', 'reranking']) {
        expect(byTarget[`grpc:${service}`]).toBeGreaterThan(0);
      }
      // The cases reached the validation, not only the access check.
      expect(byStatus['400']).toBeGreaterThan(100);
      expect(byStatus.INVALID_ARGUMENT).toBeGreaterThan(100);
      expect(result.stderr).toBe('');
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }, 120_000);
});
