// Steady load for test:resilience: bench:pipeline's load generator (test/bench/grpc-load.js) as a separate process per
// protocol, open loop at a fixed rate, one record per request read back as it ends, so that every fault's window can be
// cut out by time afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { builtEntry } from '@recsys/service-kit';

/** One request as the client saw it. */
export interface RequestRecord {
  protocol: 'rest' | 'grpc';
  /** When it started and ended, ms since the epoch. */
  start: number;
  end: number;
  /** "ok", "degraded", "http <status>", "grpc <CODE>" or "lost" (no answer). */
  outcome: string;
  /** stage: fallback, for a degraded answer. */
  fallbacks: string[];
}

export interface LoadTarget {
  /** The gateway's REST base URL. */
  rest: string;
  /** The gateway's gRPC host:port. */
  grpc: string;
}

export interface LoadSettings {
  /** Requests per second per protocol. */
  rateQps: number;
  /** Clients per protocol (requests in flight at most). */
  concurrency: number;
  users: number;
  k?: number;
  /** The gateway's API key when auth is on. */
  apiKey?: string;
}

/** A REST and a gRPC client of the gateway, each its own process, running until stop(). */
export class SteadyLoad {
  readonly records: RequestRecord[] = [];
  private readonly children: { child: ChildProcess; done: Promise<Record<string, unknown>> }[] = [];

  private constructor() {}

  static start(target: LoadTarget, settings: LoadSettings): SteadyLoad {
    const load = new SteadyLoad();
    const client = builtEntry('test/dist/bench/grpc-load.js');
    for (const protocol of ['rest', 'grpc'] as const) {
      const args = [
        client,
        ...(protocol === 'rest' ? ['--rest', target.rest] : ['--address', target.grpc]),
        '--records',
        '--duration-s',
        '0',
        '--rate',
        String(settings.rateQps),
        '--concurrency',
        String(settings.concurrency),
        '--users',
        String(settings.users),
        '--k',
        String(settings.k ?? 10),
        '--seed',
        protocol === 'rest' ? '11' : '29',
        ...(settings.apiKey ? ['--api-key', settings.apiKey] : []),
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let partial = '';
      let stderr = '';
      let summary: Record<string, unknown> | undefined;
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('{"r":')) {
            const [start, ms, outcome, fallbacks] = (JSON.parse(line) as { r: [number, number, string, string[]] }).r;
            load.records.push({ protocol, start, end: start + ms, outcome, fallbacks });
          } else if (line.startsWith('{')) summary = JSON.parse(line) as Record<string, unknown>;
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const done = new Promise<Record<string, unknown>>((resolve, reject) =>
        child.on('close', (code) =>
          code === 0 && summary ? resolve(summary) : reject(new Error(`${protocol} load client failed (exit ${code}): ${stderr.trim()}`)),
        ),
      );
      done.catch(() => undefined);
      load.children.push({ child, done });
    }
    return load;
  }

  /** Resolves once both clients have had an answer (any outcome). */
  async answering(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!(['rest', 'grpc'] as const).every((p) => this.records.some((r) => r.protocol === p))) {
      if (Date.now() > until) throw new Error(`the load clients had no answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  pids(): number[] {
    return this.children.map((c) => c.child.pid!);
  }

  /** Stops both clients (each finishes the requests it has in flight) and returns their summaries. */
  async stop(): Promise<Record<string, unknown>[]> {
    for (const { child } of this.children) child.kill('SIGTERM');
    return Promise.all(this.children.map((c) => c.done));
  }
}
