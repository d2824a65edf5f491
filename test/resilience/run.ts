// pnpm test:resilience: faults under steady load (faults.ts), hostile input (fuzz.ts), overload (overload.ts) and a soak at half the measured capacity (soak.ts), every service as its own process on a real
// redis-server persisted as the Helm chart configures it. Prints a table per part; the last line is one JSON object.
//   RESILIENCE_FORM=full|short   short: one kill -9 and one model swap, the short fuzz, no overload, no soak (jest runs it)
// The fuzz and overload parts are the fuzz and overload scripts' own (pnpm test:fuzz, pnpm test:overload) on one pipeline.
//   RESILIENCE_SOAK_MINUTES=10   the soak's length (a dev run shortens it; 0 skips it)
//   RESILIENCE_PARTS=faults,fuzz,overload,soak   the parts to run (default all; a dev run picks some)
//   RESILIENCE_MODELS_DIR        models to serve (default: the test models, trained here in seconds)
//   RESILIENCE_WORK_DIR          default .recsys/resilience
//   RESILIENCE_RATE_QPS          steady load per protocol during the faults (default 10)
//   RESILIENCE_BUDGET_MS         the gateway's request budget (default 2000: faults are judged, not latency)
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { RunningPipeline } from '@recsys/pipeline';
import { builtEntry, repoRoot } from '@recsys/service-kit';
import { removeTrainedModels, trainedModels } from '@recsys/testing';
import { type Fault, type FaultResult, allFaults, faultTable, runFaultSuite, userCount } from './faults';
import { type FuzzResult, runFuzz } from './fuzz';
import { launchTarget } from './launch';
import { curveTable, type OverloadResult, runOverload } from './overload';
import { type SoakResult, runSoak, soakTable } from './soak';
import { envNumber } from '../harness/script-env';

export type ResilienceForm = 'short' | 'full';
export const PARTS = ['faults', 'fuzz', 'overload', 'soak'] as const;
export type Part = (typeof PARTS)[number];

export interface ResilienceOptions {
  form: ResilienceForm;
  modelsDir: string;
  workDir: string;
  soakMinutes: number;
  rateQps: number;
  /** The parts to run (default all). */
  parts?: readonly Part[];
  /** The gateway's request budget, ms (see FaultSuiteOptions.budgetMs). */
  budgetMs: number;
  log: (line: string) => void;
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The short form's faults: one stage killed and one model swap. */
export function shortFaults(): Fault[] {
  const all = allFaults();
  return [all.find((f) => f.name === 'kill -9 ranking')!, all.find((f) => f.name === 'publish dlrm')!];
}

/** Requests/s the pipeline answers with every client busy (REST and gRPC at once, 4 in flight each, closed loop). */
async function measureCapacity(pipeline: RunningPipeline, users: number, seconds: number, apiKey: string): Promise<number> {
  const client = builtEntry('test/dist/bench/grpc-load.js');
  const run = (target: string[]) =>
    new Promise<number>((done, fail) => {
      const child = spawn(
        process.execPath,
        [
          client,
          ...target,
          '--concurrency',
          '4',
          '--duration-s',
          String(seconds),
          '--users',
          String(users),
          '--k',
          '10',
          '--api-key',
          apiKey,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('close', (code) => {
        const last = out.trim().split('\n').at(-1) ?? '';
        if (code !== 0 || !last.startsWith('{')) fail(new Error(`capacity load failed (exit ${code}): ${err || out}`));
        else done((JSON.parse(last) as { qps: number }).qps);
      });
    });
  const [rest, grpc] = await Promise.all([run(['--rest', pipeline.httpUrl]), run(['--address', pipeline.addresses.gateway])]);
  return round(rest + grpc, 1);
}

export interface ResilienceReport {
  faults: FaultResult[];
  fuzz?: FuzzResult;
  overload?: OverloadResult;
  capacityQps?: number;
  soak?: SoakResult;
  /** Parts not run, and why. */
  skipped: string[];
  summary: Record<string, unknown>;
}

export async function runResilience(options: ResilienceOptions): Promise<ResilienceReport> {
  const { log } = options;
  const short = options.form === 'short';
  const skipped: string[] = [];
  const parts = new Set(options.parts ?? PARTS);
  for (const part of PARTS) if (!parts.has(part)) skipped.push(`${part}: not among RESILIENCE_PARTS`);
  const faults = await runFaultSuite({
    modelsDir: options.modelsDir,
    workDir: join(options.workDir, 'faults'),
    faults: !parts.has('faults') ? [] : short ? shortFaults() : allFaults(),
    rateQps: options.rateQps,
    budgetMs: options.budgetMs,
    beforeS: short ? 1 : 3,
    afterS: short ? 2.5 : 4,
    log,
  });

  // Hostile input, overload and the soak share one fresh pipeline: the fuzz and overload scripts' own (launch.ts: split,
  // its own Redis, auth on with a fresh key), with the product's defaults (the 250 ms budget included).
  const runFuzzPart = parts.has('fuzz');
  const runOverloadPart = !short && parts.has('overload');
  const soakMinutes = short || !parts.has('soak') ? 0 : options.soakMinutes;
  if (soakMinutes === 0 && parts.has('soak')) skipped.push('soak: RESILIENCE_SOAK_MINUTES=0 or the short form');
  if (short && parts.has('overload')) skipped.push('overload: the short form has none');
  let fuzz: ResilienceReport['fuzz'];
  let overload: ResilienceReport['overload'];
  let capacityQps: number | undefined;
  let soak: SoakResult | undefined;
  if (runFuzzPart || runOverloadPart || soakMinutes > 0) {
    const target = await launchTarget({}, (line) => (/^\[[\w-]+\] (WARN|ERROR) /.test(line) ? undefined : log(line)), options.modelsDir);
    const { pipeline, apiKey } = target;
    try {
      const users = await userCount(pipeline.modelsDir);
      if (runFuzzPart) {
        log(`fuzz (${short ? 'short' : 'full'})`);
        fuzz = await runFuzz({
          gatewayRest: pipeline.httpUrl,
          gatewayGrpc: pipeline.addresses.gateway,
          stageAddresses: target.stageAddresses,
          cases: short ? 'short' : 'full',
          pids: target.pids,
          apiKey,
        });
        for (const finding of fuzz.findings) log(`fuzz finding: ${finding}`);
      }
      if (runOverloadPart) {
        // The overload suite measures the capacity itself (a closed loop), then offers multiples of it.
        log('overload: the capacity, then multiples of it');
        overload = await runOverload({ gatewayRest: pipeline.httpUrl, users, apiKey });
        capacityQps = overload.capacity_qps;
      } else if (soakMinutes > 0) {
        capacityQps = await measureCapacity(pipeline, users, 8, apiKey);
        log(`capacity: ${capacityQps} requests/s (REST and gRPC, 4 in flight each)`);
      }
      if (soakMinutes > 0) {
        const rate = Math.max(2, round(capacityQps! / 2, 0));
        log(`soak: ${soakMinutes} min at ${rate} requests/s (half the capacity)`);
        soak = await runSoak({ pipeline, rateQps: rate, minutes: soakMinutes, users, apiKey, log });
      }
    } finally {
      await target.close();
    }
  }

  const sum = (pick: (r: FaultResult) => number) => faults.reduce((total, r) => total + pick(r), 0);
  const misses = [
    ...faults.flatMap((r) => r.misses.map((m) => `${r.name}: ${m}`)),
    ...(soak?.misses.map((m) => `soak: ${m}`) ?? []),
    ...(fuzz && (fuzz.fuzz_5xx > 0 || fuzz.crashes > 0) ? [`fuzz: ${fuzz.fuzz_5xx} 5xx, ${fuzz.crashes} crashes`] : []),
  ];
  const summary: Record<string, unknown> = {
    form: options.form,
    passed: misses.length === 0,
    misses,
    skipped,
    capacity_qps: capacityQps ?? null,
    faults: faults.length,
    requests: sum((r) => r.sent),
    gateway_5xx: sum((r) => r.gateway_5xx),
    lost: sum((r) => r.lost),
    degraded: sum((r) => r.degraded),
    // Answers not clean (degraded, failed or lost) from each swap's publish to the end of its window.
    degraded_during_swap: sum((r) => (r.kind === 'swap' ? r.phases.during.unclean + r.phases.after.unclean : 0)),
    max_recovery_s: Math.max(0, ...faults.map((r) => (r.recovered ? r.recovery_s : Number.POSITIVE_INFINITY))),
    fuzz_cases: fuzz?.fuzz_cases ?? null,
    fuzz_5xx: fuzz?.fuzz_5xx ?? null,
    // Services that ended on their own during the faults, and the fuzz suite's count.
    crashes: sum((r) => r.crashes.length) + (fuzz?.crashes ?? 0),
    shed_p99_ms_at_2x_capacity: overload?.shed_p99_ms_at_2x_capacity ?? null,
    soak_minutes: soak?.minutes ?? 0,
    soak_rss_growth_pct: soak?.rss_growth_pct ?? null,
  };
  if (summary.max_recovery_s === Number.POSITIVE_INFINITY) summary.max_recovery_s = null;
  return { faults, fuzz, overload, capacityQps, soak, skipped, summary };
}

async function main(): Promise<void> {
  const form = (process.env.RESILIENCE_FORM ?? 'full') as ResilienceForm;
  if (form !== 'full' && form !== 'short') throw new Error(`RESILIENCE_FORM must be full or short, got "${form}"`);
  const log = (line: string) => console.log(line);
  let modelsDir = process.env.RESILIENCE_MODELS_DIR;
  if (!modelsDir) {
    log('models: training the test models');
    modelsDir = (await trainedModels()).root;
  }
  const parts = (process.env.RESILIENCE_PARTS ?? PARTS.join(',')).split(',').map((p) => p.trim()) as Part[];
  const unknown = parts.find((p) => !PARTS.includes(p));
  if (unknown !== undefined) throw new Error(`RESILIENCE_PARTS: unknown part "${unknown}" (parts are ${PARTS.join(', ')})`);
  const started = Date.now();
  try {
    const report = await runResilience({
      form,
      parts,
      modelsDir: resolve(modelsDir),
      workDir: resolve(process.env.RESILIENCE_WORK_DIR ?? join(repoRoot, '.recsys', 'resilience')),
      soakMinutes: envNumber('RESILIENCE_SOAK_MINUTES', 10, 'non-negative'),
      rateQps: envNumber('RESILIENCE_RATE_QPS', 10, 'positive'),
      budgetMs: envNumber('RESILIENCE_BUDGET_MS', 2000),
      log,
    });
    console.log('');
    console.log(`## Faults under steady load (REST and gRPC, ${envNumber('RESILIENCE_RATE_QPS', 10, 'positive')} requests/s each)`);
    console.log('');
    console.log(faultTable(report.faults));
    if (report.fuzz) {
      const { findings, by_target: byTarget, by_status: byStatus, ...figures } = report.fuzz;
      console.log(
        `\n## Fuzz\n\n${JSON.stringify(figures)}\nby target: ${JSON.stringify(byTarget)}\nby status: ${JSON.stringify(byStatus)}`,
      );
      for (const finding of findings) console.log(`finding: ${finding}`);
    }
    if (report.overload) {
      console.log(`\n## Overload (capacity ${report.overload.capacity_qps} requests/s, REST, open loop)\n`);
      console.log(curveTable(report.overload.curve));
    }
    if (report.soak) {
      console.log(
        `\n## Soak: ${report.soak.minutes} min at ${report.soak.rate_qps} requests/s (half of ${report.capacityQps}); ` +
          `${report.soak.requests} requests, ${report.soak.failed} failed, ${report.soak.shed} shed, ${report.soak.degraded} degraded\n`,
      );
      console.log(soakTable(report.soak));
    }
    for (const line of report.skipped) console.log(`not run: ${line}`);
    console.log(`\n${Math.round((Date.now() - started) / 1000)} s in all`);
    console.log(JSON.stringify(report.summary));
    if (!report.summary.passed) process.exitCode = 1;
  } finally {
    if (!process.env.RESILIENCE_MODELS_DIR) removeTrainedModels(`p${process.pid}`);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
