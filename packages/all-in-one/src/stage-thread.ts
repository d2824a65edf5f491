import { createLogger, linkInProcess } from '@recsys/service-kit';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { SERVICES, type ThreadStage } from './services.js';
import type { StageThreadReply, StageThreadRequest } from './stage-threads.js';

/**
 * A worker thread of the all-in-one process that runs one stage: the same start function and configuration as on
 * the main thread, its in-process transport linked to the main thread's over `port` (its calls to the feature
 * service and the main thread's calls to it cross there as bytes). The thread's environment is the stage's own.
 */
const { name, port } = workerData as { name: ThreadStage; port: MessagePort };
const control = parentPort!;
const post = (reply: StageThreadReply) => control.postMessage(reply);

async function run(): Promise<void> {
  const link = linkInProcess(port, { fallback: true });
  const prepared = SERVICES[name](process.env);
  const hosted = await prepared.start(createLogger(name, prepared.logLevel));
  control.on('message', (request: StageThreadRequest) => {
    switch (request.control) {
      case 'metrics':
        hosted.running.metrics.registry.getMetricsAsJSON().then(
          (metrics) => post({ control: 'metrics', id: request.id, metrics }),
          (error: Error) => post({ control: 'metrics', id: request.id, error: error.message }),
        );
        return;
      case 'reload':
        return hosted.reload();
      case 'close':
        hosted.running.close().then(
          () => {
            link.close();
            port.close();
            post({ control: 'closed' });
            process.exit(0);
          },
          (error: Error) => {
            post({ control: 'closed', error: error.message });
            process.exit(1);
          },
        );
    }
  });
  post({ control: 'ready' });
}

run().catch((error: Error) => {
  post({ control: 'failed', error: error instanceof Error ? error.message : String(error) });
});
