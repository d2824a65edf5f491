import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import type { CallSpan } from './tracing.js';

/** What a handler knows about the call it serves, reachable from any code it awaits. */
export interface RequestContext {
  requestId: string;
  /** The caller's deadline as epoch milliseconds; Infinity when the caller set none. */
  deadlineMs: number;
  /**
   * When the transport received the request, epoch milliseconds: a budget counts from it, so time spent before the
   * handler (waiting for an admission slot, the body arriving) is part of it. Absent: from when the handler reads it.
   */
  receivedMs?: number;
  method: string;
  /** The call's span while tracing is on: current for everything the handler runs. */
  span?: CallSpan;
}

export const REQUEST_ID_HEADER = 'x-request-id';

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return context.span ? context.span.run(() => storage.run(context, fn)) : storage.run(context, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** The request id the caller sent (sanitised), or a new one. */
export function requestIdFrom(metadata: Metadata | undefined): string {
  const value = metadata?.get(REQUEST_ID_HEADER)[0];
  if (typeof value === 'string' && /^[\w.:-]{1,128}$/.test(value)) return value;
  return randomUUID();
}

/** Milliseconds left before the current request's deadline (Infinity outside a request or without one). */
export function remainingMs(now = Date.now()): number {
  const context = storage.getStore();
  return context ? context.deadlineMs - now : Infinity;
}
