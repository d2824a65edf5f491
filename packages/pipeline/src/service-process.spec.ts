import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_IN_ONE_NODE_FLAGS, SERVING_NODE_FLAGS } from '@recsys/service-kit';
import { type ExitResult, ServiceProcess, type ServiceProcessOptions, noteworthyLine } from './service-process.js';

describe('noteworthyLine', () => {
  it('shows warnings, errors and plain lines, and hides routine JSON logs', () => {
    expect(noteworthyLine('ranking', '{"level":"info","msg":"ranking service listening"}')).toBeUndefined();
    expect(noteworthyLine('ranking', '{"level":"warn","msg":"cuda unavailable"}')).toBe('[ranking] WARN cuda unavailable');
    expect(noteworthyLine('ranking', '{"level":"error","msg":"reload failed","err":{"message":"bad checksum"}}')).toBe(
      '[ranking] ERROR reload failed: bad checksum',
    );
    expect(noteworthyLine('features', 'invalid configuration: REDIS_URL: must be a redis:// URL')).toBe(
      '[features] invalid configuration: REDIS_URL: must be a redis:// URL',
    );
    expect(noteworthyLine('features', '{not json')).toBe('[features] {not json');
    expect(noteworthyLine('features', '   ')).toBeUndefined();
  });
});

describe('ServiceProcess', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'recsys-up-process-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A spec that fails half-way leaves no process behind (a stopped one spinning on in the background).
  const made: ServiceProcess[] = [];
  afterEach(async () => {
    for (const service of made.splice(0)) if (service.running) await service.signal('SIGKILL').catch(() => undefined);
  });

  function serviceFor(name: string, source: string, options: Pick<ServiceProcessOptions, 'nodeFlags'> = {}) {
    const script = join(dir, `${name}.js`);
    writeFileSync(script, source);
    const shown: string[] = [];
    const unexpected: ExitResult[] = [];
    const service = new ServiceProcess({
      name,
      script,
      env: { PATH: process.env.PATH ?? '' },
      logFile: join(dir, `${name}.log`),
      log: (line) => shown.push(line),
      onUnexpectedExit: (_, result) => unexpected.push(result),
      ...options,
    });
    made.push(service);
    return { service, shown, unexpected };
  }

  it('keeps and logs all output, shows what matters, and stops on SIGTERM without calling it unexpected', async () => {
    const { service, shown, unexpected } = serviceFor(
      'calm',
      `console.log(JSON.stringify({ level: 'info', msg: 'listening' }));
       console.log(JSON.stringify({ level: 'warn', msg: 'slow disk' }));
       console.error('plain trouble');
       process.on('SIGTERM', () => { console.log(JSON.stringify({ level: 'info', msg: 'stopped' })); process.exit(0); });
       setInterval(() => {}, 1000);`,
    );
    service.start();
    expect(service.pid).toBeGreaterThan(0);
    while (!service.output().includes('plain trouble')) await new Promise((r) => setTimeout(r, 20));
    await service.stop(5000);
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.running).toBe(false);
    expect(service.pid).toBeUndefined();
    expect(unexpected).toEqual([]);
    expect(shown.sort()).toEqual(['[calm] WARN slow disk', '[calm] plain trouble']);
    expect(service.output()).toContain('"msg":"stopped"');
    await service.closeLog();
    const file = readFileSync(join(dir, 'calm.log'), 'utf8');
    expect(file).toContain('"msg":"listening"');
    expect(file).toContain('"msg":"stopped"');
    // A restart appends to the same log.
    service.start();
    while (service.output().split('"msg":"listening"').length < 3) await new Promise((r) => setTimeout(r, 20));
    await service.stop(5000);
    await service.closeLog();
    expect(readFileSync(join(dir, 'calm.log'), 'utf8').split('"msg":"listening"')).toHaveLength(3);
  });

  it("starts the script with the serving V8 flags (service-kit's SERVING_NODE_FLAGS)", async () => {
    const { service } = serviceFor(
      'flags',
      `const v8 = require('node:v8');
       const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
       console.log(JSON.stringify({ level: 'info', execArgv: process.execArgv, newSpaceMiB: newSpace / 2 ** 20 }));`,
    );
    service.start();
    await service.exited;
    const line = JSON.parse(service.output().trim().split('\n')[0]!) as { execArgv: string[]; newSpaceMiB: number };
    expect(line.execArgv).toEqual([...SERVING_NODE_FLAGS]);
    // V8's own sizing would start the new space at 1 MiB and let it grow to 128 MiB.
    expect(line.newSpaceMiB).toBe(16);
    await service.closeLog();

    // Flags of its own where given (the all-in-one process's).
    const { service: aio } = serviceFor('flags-all-in-one', `console.log(JSON.stringify({ level: 'info', execArgv: process.execArgv }));`, {
      nodeFlags: ALL_IN_ONE_NODE_FLAGS,
    });
    aio.start();
    await aio.exited;
    expect((JSON.parse(aio.output().trim().split('\n')[0]!) as { execArgv: string[] }).execArgv).toEqual([...ALL_IN_ONE_NODE_FLAGS]);
    await aio.closeLog();
  });

  it('kills a process that ignores SIGTERM once the timeout passes', async () => {
    const { service, shown } = serviceFor('stubborn', `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000);`);
    service.start();
    while (!service.output().includes('up')) await new Promise((r) => setTimeout(r, 20));
    await service.stop(300);
    expect((await service.exited).signal).toBe('SIGKILL');
    expect(shown).toContain('[stubborn] did not stop within 300 ms; killing it');
    await service.closeLog();
  });

  it('reports a process that ends on its own, with its last lines', async () => {
    const { service, unexpected } = serviceFor('fragile', `console.error('line 1'); console.error('boom'); process.exit(3);`);
    service.start();
    expect(await service.exited).toEqual({ code: 3, signal: null });
    expect(unexpected).toEqual([{ code: 3, signal: null }]);
    expect(service.lastLines(1)).toEqual(['boom']);
    await service.closeLog();
  });

  it('stops and continues a process (a hung service), and kill -9 resolves once it has ended (fault injection)', async () => {
    const { service, unexpected } = serviceFor('hung', `console.log('up'); let n = 0; setInterval(() => console.log('tick ' + n++), 20);`);
    service.start();
    while (!service.output().includes('tick 1')) await new Promise((r) => setTimeout(r, 20));
    const state = () => /^State:\s+(\w)/m.exec(readFileSync(`/proc/${service.pid}/status`, 'utf8'))?.[1];
    await service.signal('SIGSTOP');
    while (state() !== 'T') await new Promise((r) => setTimeout(r, 20));
    // What it wrote before it stopped may still be in the pipe (a loaded machine reads it late): read until no more comes.
    let stoppedAt = -1;
    while (service.output().length !== stoppedAt) {
      stoppedAt = service.output().length;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(service.output().length).toBe(stoppedAt);
    await service.signal('SIGCONT');
    while (service.output().length === stoppedAt) await new Promise((r) => setTimeout(r, 20));
    await service.signal('SIGKILL');
    expect(service.running).toBe(false);
    expect(unexpected).toEqual([{ code: null, signal: 'SIGKILL' }]);
    await expect(service.signal('SIGCONT')).rejects.toThrow('hung is not running');
    await service.closeLog();
  });
});
