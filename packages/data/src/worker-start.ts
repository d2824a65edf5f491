import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker's script `file` for a module in `moduleDir` (its __dirname): beside the module once built; from the sources
 * (jest runs src/), the built one in the package's dist/.
 */
export function builtWorkerScript(moduleDir: string, file: string): string {
  const beside = join(moduleDir, file);
  return existsSync(beside) ? beside : join(moduleDir, '..', 'dist', file);
}

/** How a worker thread says it is ready, and what errors call it. */
export interface WorkerReadiness<T> {
  /** The worker as errors name it, e.g. "preranker v3: the session worker". */
  name: string;
  /** What it does before its first message, for the error when it exits first (e.g. "its session was made"). */
  before: string;
  /** Its first message: the value to start with, or an Error to fail with (the worker is then stopped). */
  ready(reply: unknown): T | Error;
}

/**
 * A worker thread of `script`, once its first message says it is ready (`readiness.ready`); an error or exit before
 * that rejects naming the worker, once the worker has been stopped. Only the listeners added here are taken off afterwards:
 * the worker's own (e.g. what refs its port) stay.
 */
export function startWorker<T>(
  script: string,
  options: WorkerOptions,
  readiness: WorkerReadiness<T>,
): Promise<{ worker: Worker; value: T }> {
  const worker = new Worker(script, options);
  const { name, before } = readiness;
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => stop(new Error(`${name} failed to start: ${error.message}`));
    const onExit = (code: number) => stop(new Error(`${name} exited (code ${code}) before ${before}`));
    const onMessage = (reply: unknown) => {
      const value = readiness.ready(reply);
      if (value instanceof Error) return stop(value);
      detach();
      resolve({ worker, value });
    };
    const detach = () => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
    };
    // The caller learns of the failure once the worker has ended: no thread outlives a failed start.
    const stop = (error: Error) => {
      detach();
      void worker.terminate().finally(() => reject(error));
    };
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.on('message', onMessage);
  });
}
