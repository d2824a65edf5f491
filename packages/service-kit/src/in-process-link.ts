import { Metadata, status, type MetadataValue } from '@grpc/grpc-js';
import type { MessagePort } from 'node:worker_threads';
import {
  callInProcess,
  grpcCallError,
  registerInProcessEndpoint,
  setInProcessFallback,
  untilDeadline,
  type CallEnding,
  type InProcessEndpoint,
} from './in-process.js';

/**
 * The in-process transport between two threads of one process (a stage hosted on a worker thread in the all-in-one
 * mode): a call to an address the other thread serves crosses a MessagePort as the same request bytes, metadata and
 * deadline, and is served there by callInProcess, so its handler, status codes and cancellation are the in-process
 * path's. The bytes are copied once into a buffer of their own and transferred, never cloned with what they sit in.
 */
type LinkMessage =
  | {
      link: 'call';
      id: number;
      address: string;
      path: string;
      request: Uint8Array;
      metadata: [string, MetadataValue[]][];
      deadlineMs: number;
    }
  | { link: 'cancel'; id: number }
  | { link: 'answer'; id: number; answer: Uint8Array }
  | { link: 'error'; id: number; code: number; details: string };

export interface InProcessLinkOptions {
  /** Addresses served on the other thread: this thread's registry sends their calls over the link. */
  remote?: string[];
  /** Every address this thread does not serve goes over the link (a worker thread's link to the main thread). */
  fallback?: boolean;
}

export interface InProcessLink {
  /** Calls sent over the link still waiting for an answer. */
  readonly pending: number;
  /** Takes the link's addresses off this thread's registry and ends its calls in flight with UNAVAILABLE. */
  close(): void;
}

/**
 * Links this thread's in-process registry to another thread's over `port` (the other end links its own): calls
 * that come over it are served by this thread's services; calls to `remote` addresses (or, with `fallback`, to any address
 * not served here) go to the other thread. A call's deadline and cancellation hold on both sides.
 */
export function linkInProcess(port: MessagePort, options: InProcessLinkOptions = {}): InProcessLink {
  let nextId = 1;
  let closed = false;
  const waiting = new Map<number, CallEnding>();
  const serving = new Map<number, AbortController>();
  const post = (message: LinkMessage, transfer: ArrayBuffer[] = []) => {
    if (!closed) port.postMessage(message, transfer);
  };

  /**
   * One call to `address` on the other thread; the caller's deadline holds here too, so a busy or stopped thread cannot
   * keep it waiting past it.
   */
  const send = (
    address: string,
    path: string,
    request: Uint8Array,
    metadata: Metadata,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Buffer> => {
    if (closed) return Promise.reject(grpcCallError(status.UNAVAILABLE, `the link to ${address} is closed`));
    const id = nextId++;
    const hooks = { ended: () => void waiting.delete(id), stopped: () => post({ link: 'cancel', id }) };
    return untilDeadline(deadlineMs, signal, hooks, (ending) => {
      waiting.set(id, ending);
      const bytes = new Uint8Array(request);
      post({ link: 'call', id, address, path, request: bytes, metadata: Object.entries(metadata.toJSON()), deadlineMs }, [bytes.buffer]);
    });
  };
  const endpointAt = (address: string): InProcessEndpoint => ({
    call: (path, request, metadata, deadlineMs, signal) => send(address, path, request, metadata, deadlineMs, signal),
  });

  const serve = (message: Extract<LinkMessage, { link: 'call' }>) => {
    const controller = new AbortController();
    serving.set(message.id, controller);
    const metadata = new Metadata();
    for (const [key, values] of message.metadata)
      for (const value of values) metadata.add(key, typeof value === 'string' ? value : Buffer.from(value));
    callInProcess(message.address, message.path, message.request, metadata, message.deadlineMs, controller.signal, true).then(
      (answer) => {
        if (!serving.delete(message.id)) return;
        const bytes = new Uint8Array(answer);
        post({ link: 'answer', id: message.id, answer: bytes }, [bytes.buffer]);
      },
      (error: { code?: number; details?: string; message?: string }) => {
        if (!serving.delete(message.id)) return;
        const code = typeof error?.code === 'number' ? error.code : status.UNKNOWN;
        post({ link: 'error', id: message.id, code, details: error?.details ?? error?.message ?? 'Unknown Error' });
      },
    );
  };

  const onMessage = (message: LinkMessage) => {
    switch (message?.link) {
      case 'call':
        return serve(message);
      case 'cancel': {
        const controller = serving.get(message.id);
        serving.delete(message.id);
        return controller?.abort();
      }
      case 'answer': {
        const { answer } = message;
        return waiting.get(message.id)?.resolve(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
      }
      case 'error':
        return waiting.get(message.id)?.reject(grpcCallError(message.code, message.details));
    }
  };
  port.on('message', onMessage);

  const removals = (options.remote ?? []).map((address) => registerInProcessEndpoint(address, endpointAt(address)));
  if (options.fallback) removals.push(setInProcessFallback((address) => endpointAt(address)));

  return {
    get pending() {
      return waiting.size;
    },
    close() {
      if (closed) return;
      for (const remove of removals) remove();
      for (const controller of serving.values()) controller.abort();
      serving.clear();
      for (const { reject } of [...waiting.values()]) reject(grpcCallError(status.UNAVAILABLE, 'the thread serving the call is gone'));
      closed = true;
      port.off('message', onMessage);
    },
  };
}
