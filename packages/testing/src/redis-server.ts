import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@recsys/service-kit';

/**
 * The persistence and memory settings the Helm chart's Redis runs with (charts/recsys, recsys.redisConf with the default
 * redis.appendfsync): an append-only file with an RDB preamble, fsync every second, no RDB snapshots, no eviction.
 * chart-check asserts that the rendered redis.conf holds each of these lines, so tests restart the Redis a deployment runs.
 */
export const CHART_REDIS_CONFIG: readonly (readonly [string, string])[] = [
  ['appendonly', 'yes'],
  ['appendfsync', 'everysec'],
  ['aof-use-rdb-preamble', 'yes'],
  ['save', '""'],
  ['maxmemory-policy', 'noeviction'],
];

/**
 * One redis-server process on a loopback port with its data in `dir`, persisted as the chart configures it
 * (CHART_REDIS_CONFIG): a stop (SIGTERM) and a start on the same port and folder bring back what was written; a SIGKILL
 * loses at most the last second. Extra arguments are appended (e.g. cluster mode).
 */
export class RedisProcess {
  private process: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  get running(): boolean {
    return this.process !== undefined;
  }

  /** The running redis-server's process id (undefined when stopped). */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Starts (again) on the same port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const binary = process.env.REDIS_SERVER_BIN ?? 'redis-server';
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir];
    for (const [name, value] of CHART_REDIS_CONFIG) args.push(`--${name}`, value === '""' ? '' : value);
    args.push(...this.extraArgs);
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.on('error', () => undefined);
    this.process = child;
    await waitForPort(this.port, 10000, () => child.exitCode !== null || child.signalCode !== null);
  }

  /** SIGTERM (a clean shutdown) by default; SIGKILL models a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}

/** A real redis-server process on a free loopback port, with its data in a temporary folder. */
export class RedisServer {
  private readonly dir = mkdtempSync(join(tmpdir(), 'recsys-redis-'));
  private readonly server: RedisProcess;

  private constructor(readonly port: number) {
    this.server = new RedisProcess(port, this.dir);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The running redis-server's process id (undefined when stopped): benchmarks read its CPU. */
  get pid(): number | undefined {
    return this.server.pid;
  }

  static async start(port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()));
    await server.resume();
    return server;
  }

  /** Starts (again) on the same port; data written before a stop is kept in the folder's AOF. */
  async resume(): Promise<void> {
    await this.server.start();
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function waitForPort(port: number, timeoutMs: number, died: () => boolean): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (died()) throw new Error(`redis-server exited before listening on ${port} (is redis-server installed?)`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
