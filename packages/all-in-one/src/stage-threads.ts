import { builtWorkerScript, startWorker } from '@recsys/data';
import { inProcessAddress, linkInProcess, type Logger } from '@recsys/service-kit';
import { MessageChannel, type Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { ThreadStage } from './services.js';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** What the main thread asks of a stage thread (the calls themselves cross on the in-process link). */
export type StageThreadRequest = { control: 'metrics'; id: number } | { control: 'reload' } | { control: 'close' };

/** What a stage thread tells the main thread. */
export type StageThreadReply =
  | { control: 'ready' }
  | { control: 'failed'; error: string }
  | { control: 'metrics'; id: number; metrics?: MetricsJson; error?: string }
  | { control: 'closed'; error?: string };

/** How long a stage thread may take to drain and close before it is stopped. */
const CLOSE_TIMEOUT_MS = 30_000;

/** A stage running on a worker thread of this process, reached at inproc://<name> like one on this thread. */
export interface StageThread {
  readonly name: ThreadStage;
  /** The worker running the stage (diagnostics; close() is how to stop it). */
  readonly worker: Worker;
  /** The stage's metrics registry, as JSON (prom-client's getMetricsAsJSON). */
  metrics(): Promise<MetricsJson>;
  /** Pre-ranking and ranking look for new model versions (SIGHUP). */
  reload(): void;
  /** Drains the stage's calls and ends the thread. */
  close(): Promise<void>;
}

/**
 * Starts stage `name` on a worker thread with the stage's environment `env`, once the stage there says it serves.
 * `onExit` is called when the thread ends without being closed (an uncaught error in the stage): the address then
 * answers UNAVAILABLE, as a stopped stage does.
 */
export async function startStageThread(
  name: ThreadStage,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  onExit: (name: ThreadStage, error: Error) => void,
): Promise<StageThread> {
  const { port1, port2 } = new MessageChannel();
  const link = linkInProcess(port1, { remote: [inProcessAddress(name)] });
  const stopLink = () => {
    link.close();
    port1.close();
  };
  let worker: Worker;
  try {
    ({ worker } = await startWorker(
      builtWorkerScript(__dirname, 'stage-thread.js'),
      // The OS thread takes the stage's name (/proc/<pid>/task/*/comm, profilers).
      { name, workerData: { name, port: port2 }, transferList: [port2], env },
      {
        name: `${name}: its stage thread`,
        before: 'the stage started',
        ready: (reply) => {
          const message = reply as StageThreadReply;
          if (message.control === 'ready') return true;
          return new Error(`${name} failed to start on its thread: ${message.control === 'failed' ? message.error : message.control}`);
        },
      },
    ));
  } catch (error) {
    stopLink();
    throw error;
  }

  let nextId = 1;
  const metricsWaiting = new Map<number, { resolve: (metrics: MetricsJson) => void; reject: (error: Error) => void }>();
  let closing: Promise<void> | undefined;
  let lastError: Error | undefined;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.on('error', (error) => {
    lastError = error;
    logger.error({ err: error, stage: name }, 'a stage thread failed');
  });
  worker.on('message', (reply: StageThreadReply) => {
    if (reply.control === 'metrics') {
      const waiting = metricsWaiting.get(reply.id);
      metricsWaiting.delete(reply.id);
      if (reply.metrics) waiting?.resolve(reply.metrics);
      else waiting?.reject(new Error(`${name}'s metrics: ${reply.error}`));
    } else if (reply.control === 'closed' && reply.error) {
      logger.error({ stage: name, error: reply.error }, 'a stage thread failed to close');
    }
  });
  void exited.then((code) => {
    stopLink();
    for (const { reject } of metricsWaiting.values()) reject(new Error(`${name}'s thread has ended`));
    metricsWaiting.clear();
    if (closing === undefined) onExit(name, lastError ?? new Error(`${name}'s thread ended (code ${code})`));
  });

  return {
    name,
    worker,
    metrics: () =>
      new Promise<MetricsJson>((resolve, reject) => {
        if (closing !== undefined) return reject(new Error(`${name}'s thread is closing`));
        const id = nextId++;
        metricsWaiting.set(id, { resolve, reject });
        worker.postMessage({ control: 'metrics', id } satisfies StageThreadRequest);
      }),
    reload: () => {
      if (closing === undefined) worker.postMessage({ control: 'reload' } satisfies StageThreadRequest);
    },
    close: () =>
      (closing ??= (async () => {
        worker.postMessage({ control: 'close' } satisfies StageThreadRequest);
        const timer = setTimeout(() => {
          logger.warn({ stage: name, timeoutMs: CLOSE_TIMEOUT_MS }, 'a stage thread did not close in time; stopping it');
          void worker.terminate();
        }, CLOSE_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
