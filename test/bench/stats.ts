import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The q-quantile (0..1) of samples, by the nearest-rank method. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Resident memory of a process in MiB, from /proc (Linux). */
export function rssMiB(pid: number = process.pid): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? round(Number(match[1]) / 1024, 1) : Number.NaN;
}

/** Milliseconds taken by an async operation. */
export async function timeMs(operation: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await operation();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** CPU time of this process (user + system, every thread) in microseconds: since `before` when given, else in all. */
export function cpuMicros(before?: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(before);
  return user + system;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a process (every thread), in ms, from /proc (Linux); of its thread `tid` alone when given. */
export function cpuMsOf(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ticksToMs(Number(fields[11]) + Number(fields[12]));
}

/** Clock ticks (the unit of /proc's CPU times) in ms. */
export function ticksToMs(ticks: number): number {
  return (ticks * 1000) / CLOCK_TICKS;
}

/** grpc_server_handled_total of one Prometheus endpoint, summed per gRPC service (every method and status code). */
export async function handledCallsAt(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const totals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('grpc_server_handled_total{')) continue;
    const service = /service="([^"]+)"/.exec(line)?.[1] ?? '?';
    totals[service] = (totals[service] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return totals;
}
