import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, WorkDirLock, WorkDirLockedError, processStartTicks } from './work-dir-lock.js';

const holder = (fields: Record<string, unknown>) =>
  JSON.stringify({
    format: 'recsys-up.lock/1',
    host: hostname(),
    since: '2026-01-01T00:00:00.000Z',
    command: 'node cli.js',
    token: 't',
    ...fields,
  });

describe('the work-dir lock (recsys-up.lock)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recsys-lock-'));
    path = join(dir, LOCK_FILE);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes who holds it, refuses a second taker in the same process, and is removed on release', async () => {
    const lock = await WorkDirLock.acquire(join(dir, 'new'));
    const written = JSON.parse(readFileSync(join(dir, 'new', LOCK_FILE), 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ format: 'recsys-up.lock/1', pid: process.pid, host: hostname(), command: process.argv.join(' ') });
    if (process.platform === 'linux') expect(written.startTicks).toBe(processStartTicks(process.pid));
    await expect(WorkDirLock.acquire(join(dir, 'new'))).rejects.toThrow(
      `is in use by another recsys-up: this process (an earlier launch still running), since ${String(written.since)}`,
    );
    lock.release();
    expect(existsSync(join(dir, 'new', LOCK_FILE))).toBe(false);
    (await WorkDirLock.acquire(join(dir, 'new'))).release();
  });

  it('leaves a lock that is no longer its own in place on release', async () => {
    const lock = await WorkDirLock.acquire(dir);
    const other = holder({ pid: 999_999_999 });
    writeFileSync(path, other);
    lock.release();
    expect(readFileSync(path, 'utf8')).toBe(other);
  });

  it('takes over a lock whose pid now belongs to another process (started at another time)', async () => {
    if (process.platform !== 'linux') return;
    writeFileSync(path, holder({ pid: process.pid, startTicks: processStartTicks(process.pid)! - 1 }));
    const log: string[] = [];
    const lock = await WorkDirLock.acquire(dir, (line) => log.push(line));
    expect(log).toEqual([`work dir: took over the lock of pid ${process.pid} (since 2026-01-01T00:00:00.000Z), which no longer runs`]);
    lock.release();
  });

  it('replaces an unreadable lock file, and clears a takeover guard left by a process that died during a takeover', async () => {
    writeFileSync(path, 'not json');
    mkdirSync(`${path}.takeover`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.takeover`, old, old);
    const log: string[] = [];
    const lock = await WorkDirLock.acquire(dir, (line) => log.push(line));
    expect(log).toEqual([`work dir: replaced an unreadable lock file ${path}`]);
    expect(existsSync(`${path}.takeover`)).toBe(false);
    lock.release();
  });

  it('counts a holder on another host as running (it cannot be checked from here) and says how to clear it', async () => {
    writeFileSync(path, holder({ pid: 4242, host: 'build-7' }));
    const taken = WorkDirLock.acquire(dir);
    await expect(taken).rejects.toThrow(WorkDirLockedError);
    await expect(taken).rejects.toThrow(
      `the work directory ${dir} is in use by another recsys-up: pid 4242 on host build-7, since 2026-01-01T00:00:00.000Z (node cli.js).`,
    );
    await expect(taken).rejects.toThrow(`If it no longer runs there, delete ${path}`);
  });
});
