import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { SERVING_NODE_FLAGS } from '@recsys/service-kit';

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcessOptions {
  name: string;
  script: string;
  env: Record<string, string>;
  /** Every line the process writes is appended here. */
  logFile: string;
  /** Receives the lines worth a person's attention: warnings, errors and anything that is not a JSON log line. */
  log: (line: string) => void;
  /** Called when the process ends without stop() having asked it to. */
  onUnexpectedExit: (service: ServiceProcess, result: ExitResult) => void;
  /** V8 flags before the script (default service-kit's SERVING_NODE_FLAGS; the all-in-one process: ALL_IN_ONE_NODE_FLAGS). */
  nodeFlags?: readonly string[];
}

/** In-memory output kept per process; older output stays in the log file. */
const OUTPUT_LIMIT = 1 << 20;
const LOUD_LEVELS = new Set(['warn', 'error', 'fatal', 40, 50, 60]);

/** A pino JSON line shown as `[name] LEVEL msg (err)`; other lines are shown as they are. */
export function noteworthyLine(name: string, line: string): string | undefined {
  if (line.trim() === '') return undefined;
  let entry: Record<string, unknown> | undefined;
  if (line.startsWith('{')) {
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = undefined;
    }
  }
  if (entry === undefined || typeof entry !== 'object' || entry === null) return `[${name}] ${line}`;
  if (!LOUD_LEVELS.has(entry.level as string)) return undefined;
  const err = (entry.err ?? entry.error) as { message?: unknown } | undefined;
  const detail = err && typeof err.message === 'string' ? `: ${err.message}` : '';
  return `[${name}] ${String(entry.level).toUpperCase()} ${String(entry.msg ?? '')}${detail}`;
}

/**
 * One service as a child process: started in its own process group (so a terminal's Ctrl-C reaches only the launcher, which
 * stops the services in order), its output kept, logged to a file and watched.
 */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<ExitResult> | undefined;
  private stopping = false;
  private text = '';
  private file: WriteStream | undefined;

  constructor(private readonly options: ServiceProcessOptions) {}

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Resolves when the current process ends (immediately when none runs). */
  get exited(): Promise<ExitResult> {
    return this.exit ?? Promise.resolve({ code: null, signal: null });
  }

  output(): string {
    return this.text;
  }

  lastLines(count: number): string[] {
    return this.text.trimEnd().split('\n').slice(-count);
  }

  start(): void {
    if (this.child !== undefined) throw new Error(`${this.name} is already running (pid ${this.child.pid})`);
    this.stopping = false;
    this.file ??= createWriteStream(this.options.logFile, { flags: 'a' });
    // The serving V8 flags (service-kit's SERVING_NODE_FLAGS: the young generation pinned) before the script.
    const child = spawn(process.execPath, [...(this.options.nodeFlags ?? SERVING_NODE_FLAGS), this.options.script], {
      env: this.options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.exit = new Promise<ExitResult>((resolve) => {
      child.on('error', (error) => this.take(`failed to start: ${error.message}\n`, { partial: '' }));
      child.on('close', (code, signal) => {
        if (this.child === child) this.child = undefined;
        const result = { code, signal };
        if (!this.stopping) this.options.onUnexpectedExit(this, result);
        resolve(result);
      });
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      const pending = { partial: '' };
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => this.take(chunk, pending));
      stream.on('end', () => pending.partial && this.take('\n', pending));
    }
  }

  private take(chunk: string, pending: { partial: string }): void {
    this.file?.write(chunk);
    this.text += chunk;
    if (this.text.length > OUTPUT_LIMIT) this.text = this.text.slice(this.text.length - OUTPUT_LIMIT / 2);
    const lines = (pending.partial + chunk).split('\n');
    pending.partial = lines.pop()!;
    for (const line of lines) {
      const shown = noteworthyLine(this.name, line);
      if (shown !== undefined) this.options.log(shown);
    }
  }

  /** SIGTERM, then SIGKILL when it has not ended within the timeout; resolves once it has ended. */
  async stop(timeoutMs: number): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.stopping = true;
    signal(child, 'SIGTERM');
    const timer = setTimeout(() => {
      this.options.log(`[${this.name}] did not stop within ${timeoutMs} ms; killing it`);
      signal(child, 'SIGKILL');
    }, timeoutMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a signal to the process and its group (fault injection: SIGKILL, SIGSTOP, SIGCONT). An exit it causes reaches
   * onUnexpectedExit like any exit stop() did not ask for; resolves, for SIGKILL and SIGTERM, once the process has ended.
   */
  async signal(name: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined) throw new Error(`${this.name} is not running`);
    const ended = this.exited;
    signal(child, name);
    if (name === 'SIGKILL' || name === 'SIGTERM') await ended;
  }

  /** Synchronous last resort (for process exit): kills the process and its group. */
  kill(): void {
    if (this.child === undefined) return;
    this.stopping = true;
    signal(this.child, 'SIGKILL');
  }

  async closeLog(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }
}

/** Signals the child's process group (it leads one), so anything it started goes too. */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, name);
  } catch {
    try {
      child.kill(name);
    } catch {
      // Already gone.
    }
  }
}
