// A session worker: one onnxruntime session on a thread of its own, so a run (synchronous in onnxruntime-node) never
// holds the event loop of the process that serves requests. Started by ModelSession with `thread: 'worker'`; it
// speaks the messages of session-worker-protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { errorMessage } from './error-message.js';
import { createOrtSession, runOrtSession } from './ort-session-create.js';
import type { WorkerReply, WorkerRequest, WorkerStart } from './session-worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('session-worker.js runs as a worker thread of ModelSession');
const start = workerData as WorkerStart;
let session: ort.InferenceSession | undefined;

const reply = (message: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

createOrtSession(start.bytes, start.settings, start.label).then(
  (created) => {
    session = created.session;
    reply({
      kind: 'ready',
      provider: created.provider,
      failures: created.failures,
      inputNames: [...created.session.inputNames],
      outputNames: [...created.session.outputNames],
    });
  },
  (error: unknown) => reply({ kind: 'failed', message: errorMessage(error) }),
);

port.on('message', (request: WorkerRequest) => {
  if (request.kind === 'release') {
    const done = () => port.close();
    if (session === undefined) done();
    else session.release().then(done, done);
    return;
  }
  if (session === undefined) {
    reply({ kind: 'run-failed', id: request.id, message: 'the session is not loaded' });
    return;
  }
  runOrtSession(session, request.feeds).then(
    (outputs) =>
      reply(
        { kind: 'ran', id: request.id, outputs },
        Object.values(outputs).map((o) => o.buffer as ArrayBuffer),
      ),
    (error: unknown) => reply({ kind: 'run-failed', id: request.id, message: errorMessage(error) }),
  );
});
