// recsys-up's two guards, with real processes: a stage port taken as the source port of a client connection while the
// launcher starts (issue 16: EADDRINUSE now and then), a port another program listens on, and the work-dir lock.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE, PortInUseError, WorkDirLock, WorkDirLockedError, launchPipeline, startPipeline } from '@recsys/pipeline';
import { checkHealth } from '@recsys/service-kit';
import { builtEntry, runNode, trainedModels } from '@recsys/testing';

const linux = process.platform === 'linux';

function listenResult(port: number): Promise<string> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    server.listen(port, '127.0.0.1', () => server.close(() => done('ok')));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Takes the lock on `dir` when told ("go" on stdin), says how it went, and holds it until stdin closes. */
const TAKER = `
process.stdin.setEncoding('utf8');
process.stdin.once('data', () =>
  lock.WorkDirLock.acquire(process.argv[1], (l) => console.log('log ' + l)).then(
    () => console.log('took ' + process.pid),
    (e) => console.log(e.holder ? 'locked-by ' + e.holder.pid : 'error ' + e.message),
  ),
);
process.stdin.on('end', () => process.exit(0));
console.log('ready');
`;

function taker(dir: string) {
  const module = builtEntry('packages/pipeline/dist/work-dir-lock.js');
  const child = spawn(process.execPath, ['-e', `const lock = require(${JSON.stringify(module)});\n${TAKER}`, dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  const until = (match: RegExp) =>
    new Promise<string>((done) => {
      const check = () => {
        const found = out.split('\n').find((l) => match.test(l));
        if (found !== undefined) done(found);
        else setTimeout(check, 20);
      };
      check();
    });
  return { child, until, output: () => out };
}

describe('recsys-up: ports', () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'recsys-up-ports-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it('starts a stage whose port is the source port of a client connection, once the connection lets it go (issue 16)', async () => {
    // A connection the kernel gave a source port from the ephemeral range, as it did to the launcher's own connections
    // (feature loading, health checks) in issue 16; that port is then the ranking stage's.
    let peer: Socket | undefined;
    const server: Server = createServer((socket) => (peer = socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const serverAddress = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    const port = client.localPort!;
    // The collision is real: while the connection lasts, nothing can listen on its source port (before the fix, the
    // launcher failed here with "is in use", or its stage died on EADDRINUSE).
    expect(await listenResult(port)).toBe('EADDRINUSE');

    const log: string[] = [];
    let letGo = false;
    const pipeline = await startPipeline({
      workDir,
      modelsDir: (await trainedModels()).root,
      ports: { features: 0, ranking: port },
      skip: ['retrieval', 'preranking', 'reranking', 'gateway'],
      log: (line) => {
        log.push(line);
        if (!letGo && line.startsWith(`ranking: 127.0.0.1:${port} is held by`)) {
          letGo = true;
          // The server side closes first, so the client's side keeps no TIME_WAIT on the port.
          peer!.end();
        }
      },
    });
    try {
      expect(pipeline.addresses.ranking).toBe(`127.0.0.1:${port}`);
      expect(await checkHealth(pipeline.addresses.ranking, '', 5000)).toBe('SERVING');
      const holder = linux ? `a connection 127.0.0.1:${port} -> ${serverAddress} (ESTABLISHED) of pid ${process.pid} (` : '';
      expect(log).toContainEqual(expect.stringContaining(`ranking: 127.0.0.1:${port} is in use for now by ${holder}`));
      expect(log).toContainEqual(expect.stringContaining(`ranking: 127.0.0.1:${port} is held by ${holder}`));
      expect(log.filter((line) => line.startsWith('ranking: serving on'))).toHaveLength(1);

      // The same work directory, while this pipeline runs: refused, naming the process holding it.
      const second = startPipeline({ workDir, modelsDir: (await trainedModels()).root, ports: { features: 0, ranking: 0 } });
      await expect(second).rejects.toThrow(WorkDirLockedError);
      await expect(second).rejects.toThrow(`in use by another recsys-up: this process (an earlier launch still running)`);
    } finally {
      await pipeline.close();
      client.destroy();
      await new Promise((r) => server.close(r));
    }
    expect(existsSync(join(workDir, LOCK_FILE))).toBe(false);
  }, 90_000);

  it("holds each service's metrics port from the launch until that service starts, as it holds the gRPC ports", async () => {
    // The CI failure this guards: a metrics port only looked up free at launch was taken by another program's listener
    // while the models trained, and the stage died on EADDRINUSE three times.
    let whileTraining: Promise<string> | undefined;
    const pipeline = await launchPipeline(
      {
        workDir,
        modelsDir: (await trainedModels()).root,
        metrics: true,
        ports: { features: 0, ranking: 0 },
        skip: ['retrieval', 'preranking', 'reranking', 'gateway'],
      },
      (created) => {
        // Before any service started: both metrics ports are held by the launcher.
        whileTraining = Promise.all(
          (['features', 'ranking'] as const).map((name) => listenResult(Number(new URL(created.metricsUrl(name)!).port))),
        ).then((results) => results.join(' '));
      },
    );
    try {
      expect(await whileTraining).toBe('EADDRINUSE EADDRINUSE');
      for (const name of ['features', 'ranking'] as const) {
        const text = await (await fetch(pipeline.metricsUrl(name)!)).text();
        expect(text).toContain('process_cpu_user_seconds_total');
      }
    } finally {
      await pipeline.close();
    }
  }, 90_000);

  it('fails before starting anything when another program listens on a stage port, naming it, its pid and the flag', async () => {
    const other = spawn(
      process.execPath,
      ['-e', `const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))`],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const port = await new Promise<number>((done) => other.stdout!.once('data', (d: Buffer) => done(Number(String(d).trim()))));
      const log: string[] = [];
      const started = startPipeline({
        workDir,
        modelsDir: (await trainedModels()).root,
        ports: { features: 0, retrieval: 0, preranking: port, ranking: 0, reranking: 0, gateway: 0, http: 0 },
        log: (line) => log.push(line),
      });
      await expect(started).rejects.toThrow(PortInUseError);
      await expect(started).rejects.toThrow(
        linux
          ? `preranking port 127.0.0.1:${port} is taken by another program: pid ${other.pid} (${process.execPath} -e`
          : `preranking port 127.0.0.1:${port} is taken by another program`,
      );
      await expect(started).rejects.toThrow('choose another port with --preranking-port N (0 picks a free one)');
      expect(log).toEqual([]);
      expect(existsSync(join(workDir, LOCK_FILE))).toBe(false);
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('recsys-up: the work-dir lock, between processes', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recsys-up-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second recsys-up on the same work dir, naming the holder; takes over once the holder was killed', async () => {
    const holder = taker(dir);
    try {
      await holder.until(/^ready$/);
      holder.child.stdin!.write('go\n');
      expect(await holder.until(/^(took|locked-by|error) /)).toBe(`took ${holder.child.pid}`);
      const written = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as Record<string, unknown>;
      expect(written).toMatchObject({ pid: holder.child.pid, host: hostname() });

      // The real command: it stops before training, naming the process, and leaves the holder's lock alone.
      const models = await trainedModels();
      const second = await runNode(builtEntry('packages/pipeline/dist/cli.js'), ['--work-dir', dir, '--models', models.root], {}, 60_000);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        `recsys-up: the work directory ${dir} is in use by another recsys-up: pid ${holder.child.pid}, since `,
      );
      expect(second.stderr).toContain(
        `stop that one first (Ctrl-C where it runs, or kill ${holder.child.pid}), or give this one its own --work-dir`,
      );
      expect(second.stdout).not.toContain('features: starting');
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toEqual(written);

      // Killed (no clean-up): the lock of a dead pid is taken over.
      holder.child.kill('SIGKILL');
      await new Promise((r) => holder.child.once('exit', r));
      const log: string[] = [];
      const lock = await WorkDirLock.acquire(dir, (line) => log.push(line));
      expect(log).toEqual([
        `work dir: took over the lock of pid ${holder.child.pid} (since ${String(written.since)}), which no longer runs`,
      ]);
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
      lock.release();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    } finally {
      holder.child.kill('SIGKILL');
    }
  });

  it('lets exactly one of several processes racing for a stale lock take it; the others name the winner', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    expect(alive(dead.pid!)).toBe(false);
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ format: 'recsys-up.lock/1', pid: dead.pid, host: hostname(), since: 'earlier', command: 'node cli.js', token: 'x' }),
    );
    const takers = Array.from({ length: 4 }, () => taker(dir));
    try {
      await Promise.all(takers.map((t) => t.until(/^ready$/)));
      for (const t of takers) t.child.stdin!.write('go\n');
      const results = await Promise.all(takers.map((t) => t.until(/^(took|locked-by|error) /)));
      const winners = results.filter((r) => r.startsWith('took '));
      expect(winners).toHaveLength(1);
      const winner = Number(winners[0]!.split(' ')[1]);
      expect(results.filter((r) => r.startsWith('locked-by '))).toEqual(Array(3).fill(`locked-by ${winner}`));
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: winner });
      // Whoever took it over said so, naming the dead pid.
      const said = takers.flatMap((t) => t.output().split('\n')).filter((l) => l.startsWith('log '));
      expect(takers.filter((t) => t.output().includes('log ')).every((t) => t.child.pid === winner)).toBe(true);
      // The winner said so when it was the one that removed the stale lock (another may have removed it a moment before).
      expect(said.length).toBeLessThanOrEqual(1);
      for (const line of said)
        expect(line).toBe(`log work dir: took over the lock of pid ${dead.pid} (since earlier), which no longer runs`);
    } finally {
      for (const t of takers) t.child.stdin!.end();
      await Promise.all(takers.map((t) => new Promise((r) => (t.child.exitCode !== null ? r(null) : t.child.once('exit', r)))));
    }
    // The winner exited without release(): its exit handler removed the lock.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });
});
