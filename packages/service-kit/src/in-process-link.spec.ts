import { Metadata, status } from '@grpc/grpc-js';
import { join } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { callInProcess, InProcessServer, inProcessAddresses } from './in-process.js';
import { linkInProcess, type InProcessLink } from './in-process-link.js';

/**
 * A worker thread that serves inproc://far with the built service-kit (as a stage thread of the all-in-one process
 * does), its link sending every other address back here.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const kit = require(workerData.kit);
kit.linkInProcess(workerData.port, { fallback: true });
const server = new kit.InProcessServer('inproc://far');
const bytes = (value) => value;
const cancelled = [];
const serve = (path, handler) => server.register(path, handler, bytes, bytes, 'unary');
serve('/t/Echo', (call, done) =>
  done(null, Buffer.concat([Buffer.from(call.request).reverse(), Buffer.from(' ' + call.metadata.get('x-request-id')[0])])));
serve('/t/Fail', (call, done) => done(Object.assign(new Error('x'), { code: 3, details: 'user_id: is bad' })));
serve('/t/Slow', (call, done) => setTimeout(() => { cancelled.push(call.cancelled); done(null, Buffer.from('late')); }, 300));
serve('/t/Cancelled', (call, done) => done(null, Buffer.from(JSON.stringify(cancelled))));
serve('/t/Chain', (call, done) =>
  kit.callInProcess('inproc://near', '/t/Near', call.request, call.metadata, call.getDeadline().valueOf()).then(
    (answer) => done(null, Buffer.concat([answer, Buffer.from(' via far')])),
    (error) => done(error),
  ));
parentPort.postMessage('ready');
`;

const call = (path: string, text: string, deadlineMs = Date.now() + 5000, signal?: AbortSignal, metadata = new Metadata()) =>
  callInProcess('inproc://far', path, Buffer.from(text), metadata, deadlineMs, signal);

describe('the in-process transport between threads (a stage thread of the all-in-one process)', () => {
  let worker: Worker;
  let link: InProcessLink;
  let near: InProcessServer;

  beforeAll(async () => {
    const { port1, port2 } = new MessageChannel();
    // inproc://ghost: linked here, served by nobody over there.
    link = linkInProcess(port1, { remote: ['inproc://far', 'inproc://ghost'] });
    near = new InProcessServer('inproc://near');
    near.register(
      '/t/Near',
      (c, done) =>
        done(null, Buffer.concat([Buffer.from(c.request as Uint8Array), Buffer.from(` near ${c.metadata.get('x-request-id')[0]}`)])),
      (value: never) => value as Buffer,
      (value) => value,
      'unary',
    );
    worker = new Worker(WORKER, {
      eval: true,
      workerData: { kit: join(__dirname, '..', 'dist', 'index.js'), port: port2 },
      transferList: [port2],
    });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  });

  afterAll(async () => {
    link.close();
    near.forceShutdown();
    await worker.terminate();
  });

  it("answers a call with the other thread's handler: the request's bytes and metadata in, its answer's bytes out", async () => {
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-1');
    const answer = await call('/t/Echo', 'abc', Date.now() + 5000, undefined, metadata);
    expect(answer.toString()).toBe('cba req-1');
    expect(inProcessAddresses()).toContain('inproc://far');
  });

  it("sends the handler's status code and details back as the caller's error", async () => {
    await expect(call('/t/Fail', '')).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'user_id: is bad',
      message: '3 INVALID_ARGUMENT: user_id: is bad',
    });
  });

  it('answers UNIMPLEMENTED for a path, UNAVAILABLE for an address nobody serves over there (never sent back here)', async () => {
    await expect(call('/t/Nothing', '')).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
    // Over there the address is looked up among its own services only: its fallback would send it back here, and on.
    await expect(callInProcess('inproc://ghost', '/t/Echo', Buffer.from(''), new Metadata(), Date.now() + 2000)).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: 'no service at inproc://ghost in this process',
    });
  });

  it('lets the other thread call this one (its fallback), with the same request id and deadline', async () => {
    const metadata = new Metadata();
    metadata.set('x-request-id', 'req-2');
    const answer = await call('/t/Chain', 'hello', Date.now() + 5000, undefined, metadata);
    expect(answer.toString()).toBe('hello near req-2 via far');
  });

  it('ends a call at its deadline with DEADLINE_EXCEEDED, and the handler over there learns it was cancelled', async () => {
    // The handler answers after 300 ms: the call ended at its deadline, not with that answer.
    await expect(call('/t/Slow', '', Date.now() + 50)).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    const controller = new AbortController();
    const cancelled = call('/t/Slow', '', Date.now() + 5000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    await expect(cancelled).rejects.toMatchObject({ code: status.CANCELLED });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(JSON.parse((await call('/t/Cancelled', '')).toString())).toEqual([true, true]);
    expect(link.pending).toBe(0);
  });

  it('ends calls in flight with UNAVAILABLE when the link closes, and takes its address off', async () => {
    const { port1, port2 } = new MessageChannel();
    const other = new Worker(WORKER.replace("'inproc://far'", "'inproc://other'"), {
      eval: true,
      workerData: { kit: join(__dirname, '..', 'dist', 'index.js'), port: port2 },
      transferList: [port2],
    });
    try {
      const otherLink = linkInProcess(port1, { remote: ['inproc://other'] });
      await new Promise((resolve) => other.once('message', resolve));
      const inFlight = callInProcess('inproc://other', '/t/Slow', Buffer.from(''), new Metadata(), Date.now() + 5000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(otherLink.pending).toBe(1);
      otherLink.close();
      await expect(inFlight).rejects.toMatchObject({ code: status.UNAVAILABLE });
      expect(inProcessAddresses()).not.toContain('inproc://other');
      await expect(callInProcess('inproc://other', '/t/Echo', Buffer.from(''), new Metadata(), Date.now() + 5000)).rejects.toMatchObject({
        code: status.UNAVAILABLE,
        details: 'no service at inproc://other in this process',
      });
    } finally {
      await other.terminate();
    }
  });
});
