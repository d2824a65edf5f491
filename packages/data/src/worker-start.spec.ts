import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtWorkerScript, startWorker } from './worker-start.js';

/** A worker from source text, told how to be ready: a first message with kind 'ready' carries its value. */
function start(source: string) {
  return startWorker(
    `const { parentPort } = require('node:worker_threads');\n${source}`,
    { eval: true },
    {
      name: 'test: the worker',
      before: 'it was ready',
      ready: (reply) => {
        const r = reply as { kind: string; value?: number; message?: string };
        return r.kind === 'ready' ? r.value! : new Error(`test: ${r.message ?? r.kind}`);
      },
    },
  );
}

describe('startWorker', () => {
  it("resolves with the worker and its first message's value, leaving later messages to the caller", async () => {
    const { worker, value } = await start(`
      parentPort.postMessage({ kind: 'ready', value: 42 });
      parentPort.on('message', (m) => parentPort.postMessage(m * 2));`);
    try {
      expect(value).toBe(42);
      const doubled = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage(21);
      expect(await doubled).toBe(42);
      // Only the caller's listeners are left.
      expect(worker.listenerCount('message')).toBe(0);
      expect(worker.listenerCount('exit')).toBe(0);
    } finally {
      await worker.terminate();
    }
  });

  it('rejects with what the first message says is wrong, and stops the worker', async () => {
    await expect(start(`parentPort.postMessage({ kind: 'failed', message: 'no graph' }); setInterval(() => {}, 1000);`)).rejects.toThrow(
      'test: no graph',
    );
  });

  it('rejects naming the worker when it exits or fails before its first message', async () => {
    await expect(start('process.exit(3);')).rejects.toThrow('test: the worker exited (code 3) before it was ready');
    await expect(start("throw new Error('broken at start');")).rejects.toThrow('test: the worker failed to start: broken at start');
  });
});

describe('builtWorkerScript', () => {
  it("is the script beside the module once built, else the package's built one (a module run from src/)", () => {
    const root = mkdtempSync(join(tmpdir(), 'worker-script-'));
    try {
      for (const dir of ['src', 'dist']) mkdirSync(join(root, dir));
      writeFileSync(join(root, 'dist', 'w.js'), '');
      expect(builtWorkerScript(join(root, 'dist'), 'w.js')).toBe(join(root, 'dist', 'w.js'));
      expect(builtWorkerScript(join(root, 'src'), 'w.js')).toBe(join(root, 'dist', 'w.js'));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
