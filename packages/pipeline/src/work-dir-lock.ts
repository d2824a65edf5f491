import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'recsys-up.lock';
const LOCK_FORMAT = 'recsys-up.lock/1';
/** A takeover guard older than this was left by a process that died within the few milliseconds a takeover takes. */
const GUARD_STALE_MS = 10_000;
const ATTEMPTS = 20;

/** Who holds a work directory: written once, complete, when the lock is taken. */
export interface LockHolder {
  format: typeof LOCK_FORMAT;
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not taken for the holder. */
  startTicks?: number;
  since: string;
  command: string;
  token: string;
}

/** Another run holds the work directory; the message names its process. */
export class WorkDirLockedError extends Error {
  constructor(
    readonly workDir: string,
    readonly holder: LockHolder,
  ) {
    const where = holder.host === hostname() ? '' : ` on host ${holder.host}`;
    const who = holder.pid === process.pid && !where ? 'this process (an earlier launch still running)' : `pid ${holder.pid}${where}`;
    super(
      `the work directory ${workDir} is in use by another recsys-up: ${who}, since ${holder.since} (${holder.command}). ` +
        `Two runs on one work directory would train and build into the same place: stop that one first (Ctrl-C where it runs` +
        `${where ? '' : `, or kill ${holder.pid}`}), or give this one its own --work-dir` +
        (where ? `. If it no longer runs there, delete ${join(workDir, LOCK_FILE)}` : ''),
    );
    this.name = 'WorkDirLockedError';
  }
}

/** Field 22 of /proc/<pid>/stat (after the command in parentheses, which may hold spaces); undefined off Linux or for a gone pid. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the holder still runs; one on another host cannot be checked from here and counts as running. */
export function holderRuns(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const ticks = processStartTicks(holder.pid);
  return holder.startTicks === undefined || ticks === undefined || ticks === holder.startTicks;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    return value.format === LOCK_FORMAT && Number.isInteger(value.pid) && typeof value.host === 'string'
      ? (value as LockHolder)
      : undefined;
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes a lock whose holder no longer runs, if it still reads `seen`: under a guard directory only one process at a
 * time holds, so two runs taking over the same stale lock cannot remove each other's new one.
 */
function removeStale(path: string, seen: string): boolean {
  const guard = `${path}.takeover`;
  try {
    mkdirSync(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    try {
      if (Date.now() - statSync(guard).mtimeMs > GUARD_STALE_MS) rmdirSync(guard);
    } catch {
      // Gone meanwhile: the next attempt tries again.
    }
    return false;
  }
  try {
    const now = readText(path);
    if (now === undefined) return true;
    if (now !== seen) return false;
    unlinkSync(path);
    return true;
  } finally {
    rmdirSync(guard);
  }
}

/**
 * `<workDir>/recsys-up.lock`: one recsys-up at a time trains, loads and builds in a work directory. Taken atomically
 * (a complete file hard-linked into place, which fails when one exists); a lock left by a process that no longer runs
 * (killed, crashed) is taken over; released on close and, as a last resort, when the process exits.
 */
export class WorkDirLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly path: string,
    private readonly text: string,
  ) {
    process.on('exit', this.onExit);
  }

  static async acquire(workDir: string, log: (line: string) => void = () => undefined): Promise<WorkDirLock> {
    mkdirSync(workDir, { recursive: true });
    const path = join(workDir, LOCK_FILE);
    const mine: LockHolder = {
      format: LOCK_FORMAT,
      pid: process.pid,
      host: hostname(),
      ...(processStartTicks(process.pid) !== undefined ? { startTicks: processStartTicks(process.pid) } : {}),
      since: new Date().toISOString(),
      command: process.argv.join(' '),
      token: randomUUID(),
    };
    const text = `${JSON.stringify(mine)}\n`;
    const temporary = `${path}.${process.pid}.${mine.token}.tmp`;
    writeFileSync(temporary, text);
    try {
      /** What this run removed as stale, said once the lock is its own. */
      let removed: string | undefined;
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        try {
          linkSync(temporary, path);
          if (removed !== undefined) log(removed);
          return new WorkDirLock(path, text);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const seen = readText(path);
        if (seen === undefined) continue;
        const holder = parseHolder(seen);
        if (holder !== undefined && holderRuns(holder)) throw new WorkDirLockedError(workDir, holder);
        if (removeStale(path, seen)) {
          removed =
            holder === undefined
              ? `work dir: replaced an unreadable lock file ${path}`
              : `work dir: took over the lock of pid ${holder.pid} (since ${holder.since}), which no longer runs`;
        } else {
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
        }
      }
      throw new Error(`${path}: could not take the lock in ${ATTEMPTS} attempts (other runs kept taking it over); try again`);
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  /** Removes the lock file if it is still this one's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    try {
      if (readText(this.path) === this.text) unlinkSync(this.path);
    } catch {
      // Gone already, or the directory went with a test's temporary work dir.
    }
  }
}
