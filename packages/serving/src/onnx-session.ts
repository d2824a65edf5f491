import type { Worker } from 'node:worker_threads';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type * as ort from 'onnxruntime-node';
import type { InputDescription, Tensor } from '@recsys/model-format';
import {
  createOrtSession,
  EXECUTION_PROVIDERS,
  type ExecutionProvider,
  type OrtSessionSettings,
  type ProviderFailure,
  runOrtSession,
} from './ort-session-create.js';
import { builtWorkerScript, startWorker } from '@recsys/data';
import { errorMessage } from './error-message.js';
import type { WorkerReply, WorkerRequest, WorkerStart } from './session-worker-protocol.js';

export { EXECUTION_PROVIDERS, type ExecutionProvider };

/** Where a session's runs execute: on the event loop's thread, or on a worker thread of its own. */
export const SESSION_THREADS = ['worker', 'main'] as const;
export type SessionThread = (typeof SESSION_THREADS)[number];

/** Where a zod `.transform` lets its function report a problem. */
interface IssueSink {
  addIssue(issue: { code: 'custom'; message: string }): void;
}

/**
 * A comma-separated preference of execution providers (`cuda,cpu`): known names, in order, without
 * repeats. A zod transform, so every stage's config reads its variable alike:
 * `z.string().transform(parseExecutionProviders)`.
 */
export function parseExecutionProviders(text: string, ctx: IssueSink): ExecutionProvider[] {
  const names = text
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.find((n) => !(EXECUTION_PROVIDERS as readonly string[]).includes(n));
  if (unknown !== undefined || names.length === 0) {
    const problem = unknown === undefined ? 'no provider given' : `unknown provider "${unknown}"`;
    ctx.addIssue({ code: 'custom', message: `${problem}; expected some of ${EXECUTION_PROVIDERS.join(', ')} in order of preference` });
    return [];
  }
  return [...new Set(names)] as ExecutionProvider[];
}

export interface SessionLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface ModelSessionOptions {
  /** For logs and errors: "dlrm v3", "user tower v2". */
  label: string;
  /** Tried in order; the first that creates a session serves. Default: cpu. */
  providers?: readonly ExecutionProvider[];
  /** Intra-op threads; 1 is fastest for these small models with concurrent requests. */
  intraOpThreads?: number;
  cudaDeviceId?: number;
  /**
   * `worker`: the session lives on a worker thread of its own, and a run (synchronous in onnxruntime-node) leaves the
   * event loop free to serve other requests, at the cost of copying the feeds to it. `main` (the default here): runs
   * hold the event loop for their length, as offline tools want.
   */
  thread?: SessionThread;
  logger?: SessionLogger;
}

/** Input or output shape as declared: numbers are fixed, strings are free (the batch). */
export type DeclaredShape = readonly (number | string)[];

/** A feed that does not match the graph's declared inputs, caught before onnxruntime sees it. */
export class FeedError extends Error {
  override readonly name = 'FeedError';
}

function describeFeeds(feeds: Record<string, Tensor>): string {
  return Object.entries(feeds)
    .map(([name, t]) => `${name}: ${t.data instanceof Int32Array ? 'int32' : 'float32'}[${t.shape.join(',')}]`)
    .join('; ');
}

/** A session's runs, wherever they execute. */
interface SessionBackend {
  readonly provider: ExecutionProvider;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, Tensor>, give: boolean): Promise<Record<string, Float32Array>>;
  release(): Promise<void>;
}

/** The session on the event loop's thread: each run holds it for its length. */
class MainThreadBackend implements SessionBackend {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: ExecutionProvider,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  run(feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
    return runOrtSession(this.session, feeds);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

interface PendingRun {
  resolve(outputs: Record<string, Float32Array>): void;
  reject(error: Error): void;
}

/**
 * The session on a worker thread of its own (session-worker.ts): feeds are copied to it (only the rows each view
 * holds) and transferred, outputs are transferred back. The worker is one active handle from its start to its release
 * (a count that does not move with the load, and no run left pending by a process that exits under it): a session must
 * be released, as the stages do on shutdown and after a version's last request. A worker that dies fails its pending
 * runs and every later one, naming why.
 */
class WorkerBackend implements SessionBackend {
  private readonly pending = new Map<number, PendingRun>();
  private nextId = 0;
  private failure: Error | undefined;
  private released = false;

  private constructor(
    private readonly worker: Worker,
    private readonly label: string,
    readonly provider: ExecutionProvider,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(`the session worker failed: ${error.message}`));
    worker.on('exit', (code) => {
      if (!this.released) this.fail(`the session worker exited (code ${code})`);
    });
  }

  static async start(
    bytes: Uint8Array,
    settings: OrtSessionSettings,
    label: string,
  ): Promise<{ backend: WorkerBackend; failures: ProviderFailure[] }> {
    const start: WorkerStart = { bytes, settings, label };
    const { worker, value: ready } = await startWorker(
      builtWorkerScript(__dirname, 'session-worker.js'),
      { workerData: start, name: `onnxruntime ${label}` },
      {
        name: `${label}: the session worker`,
        before: 'its session was made',
        ready: (reply) => {
          const r = reply as WorkerReply;
          if (r.kind === 'ready') return r;
          return new Error(r.kind === 'failed' ? r.message : `${label}: the session worker answered ${r.kind} before ready`);
        },
      },
    );
    return { backend: new WorkerBackend(worker, label, ready.provider, ready.inputNames, ready.outputNames), failures: ready.failures };
  }

  run(feeds: Record<string, Tensor>, give: boolean): Promise<Record<string, Float32Array>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const copies: Record<string, Tensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      // A feed given away that fills a buffer of its own moves as it is; otherwise slice(): the view's rows only, in a
      // buffer the worker may own (a view may share its buffer with other feeds, or be the caller's to keep).
      const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && t.data.buffer instanceof ArrayBuffer;
      const data = give && whole && !transfer.includes(t.data.buffer as ArrayBuffer) ? t.data : t.data.slice();
      copies[name] = { data, shape: t.shape };
      transfer.push(data.buffer as ArrayBuffer);
    }
    const id = this.nextId++;
    const request: WorkerRequest = { kind: 'run', id, feeds: copies };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(request, transfer);
    });
  }

  private settle(reply: WorkerReply): void {
    if (reply.kind !== 'ran' && reply.kind !== 'run-failed') return;
    const run = this.pending.get(reply.id);
    if (run === undefined) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'ran') run.resolve(reply.outputs);
    else run.reject(new Error(reply.message));
  }

  private fail(reason: string): void {
    this.failure ??= new Error(`${this.label}: ${reason}`);
    for (const run of this.pending.values()) run.reject(this.failure);
    this.pending.clear();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.fail('the session was released');
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'release' } satisfies WorkerRequest);
    // The worker releases its session and ends; one that does not within a second is stopped.
    const timer = setTimeout(() => void this.worker.terminate(), 1000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The one owner of onnxruntime-node sessions in serving: picks the execution provider from the
 * configured preference, checks feeds against the manifest's inputs before each run, reports tensor
 * metadata on failure and releases the native session on close. The session runs on the event loop's
 * thread or on a worker thread of its own (`thread`).
 */
export class ModelSession {
  private released = false;

  private constructor(
    private readonly backend: SessionBackend,
    readonly label: string,
    readonly inputs: readonly InputDescription[],
    readonly thread: SessionThread,
  ) {}

  get provider(): ExecutionProvider {
    return this.backend.provider;
  }

  get outputNames(): readonly string[] {
    return this.backend.outputNames;
  }

  static async create(bytes: Uint8Array, inputs: readonly InputDescription[], options: ModelSessionOptions): Promise<ModelSession> {
    const settings: OrtSessionSettings = {
      providers: options.providers?.length ? options.providers : ['cpu'],
      intraOpThreads: options.intraOpThreads ?? 1,
      cudaDeviceId: options.cudaDeviceId ?? 0,
    };
    const thread = options.thread ?? 'main';
    let backend: SessionBackend;
    let failures: ProviderFailure[];
    try {
      if (thread === 'worker') {
        ({ backend, failures } = await WorkerBackend.start(bytes, settings, options.label));
      } else {
        const created = await createOrtSession(bytes, settings, options.label);
        backend = new MainThreadBackend(created.session, created.provider);
        failures = created.failures;
      }
    } catch (error) {
      options.logger?.warn({ model: options.label, error: errorMessage(error) }, `${options.label}: no provider could load it`);
      throw error;
    }
    for (const failure of failures) {
      options.logger?.warn(
        { model: options.label, provider: failure.provider, error: failure.message },
        `${options.label}: ${failure.provider} is unavailable`,
      );
    }
    const declared = new Set(backend.inputNames);
    const expected = inputs.map((i) => i.name);
    if (declared.size !== expected.length || expected.some((n) => !declared.has(n))) {
      await backend.release();
      throw new FeedError(
        `${options.label}: the graph's inputs [${backend.inputNames.join(', ')}] differ from the manifest's [${expected.join(', ')}]`,
      );
    }
    const fallback = failures.length ? { unavailable: failures.map((f) => `${f.provider}: ${f.message}`) } : {};
    options.logger?.info(
      { model: options.label, provider: backend.provider, thread, ...fallback },
      `${options.label} runs on ${backend.provider}`,
    );
    return new ModelSession(backend, options.label, inputs, thread);
  }

  /** Throws FeedError naming the first feed that is missing, extra, of the wrong type or shape. */
  checkFeeds(feeds: Record<string, Tensor>): number {
    let batch = -1;
    for (const input of this.inputs) {
      const t = feeds[input.name];
      if (!t) throw new FeedError(`${this.label}: input "${input.name}" is missing`);
      const dtype = t.data instanceof Int32Array ? 'int32' : 'float32';
      if (dtype !== input.dtype) throw new FeedError(`${this.label}: input "${input.name}" is ${dtype}, the model needs ${input.dtype}`);
      if (t.shape.length !== input.shape.length) {
        throw new FeedError(`${this.label}: input "${input.name}" has shape [${t.shape}], the model needs [${input.shape}]`);
      }
      let size = 1;
      input.shape.forEach((dim, k) => {
        const got = t.shape[k]!;
        if (typeof dim === 'number' && got !== dim) {
          throw new FeedError(`${this.label}: input "${input.name}" dimension ${k} is ${got}, the model needs ${dim}`);
        }
        size *= got;
      });
      if (t.data.length !== size)
        throw new FeedError(`${this.label}: input "${input.name}" holds ${t.data.length} values for shape [${t.shape}]`);
      if (batch === -1) batch = t.shape[0]!;
      else if (t.shape[0] !== batch) throw new FeedError(`${this.label}: input "${input.name}" has batch ${t.shape[0]}, others ${batch}`);
    }
    const extra = Object.keys(feeds).find((name) => !this.inputs.some((i) => i.name === name));
    if (extra !== undefined) throw new FeedError(`${this.label}: "${extra}" is not an input of the model`);
    return batch;
  }

  /**
   * Runs the graph; outputs come back as float32 arrays by name. `give`: the feeds' arrays are the caller's to give
   * away, read by nobody after this call (fresh ones made for this run): on a worker thread each that fills its buffer
   * moves there instead of being copied, and is left empty (detached) here.
   */
  async run(feeds: Record<string, Tensor>, { give = false }: { give?: boolean } = {}): Promise<Record<string, Float32Array>> {
    if (this.released) throw new Error(`${this.label}: the session was released`);
    this.checkFeeds(feeds);
    const span = this.startRunSpan(feeds);
    try {
      return await this.backend.run(feeds, give);
    } catch (error) {
      const failure = new Error(`${this.label}: onnxruntime failed on ${describeFeeds(feeds)}: ${errorMessage(error)}`);
      span?.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
      throw failure;
    } finally {
      span?.end();
    }
  }

  /**
   * A span for this run when the caller's span is being recorded (a sampled request); none otherwise, so
   * warm-ups stay out of traces and the untraced path only looks up the current span.
   */
  private startRunSpan(feeds: Record<string, Tensor>) {
    if (!trace.getActiveSpan()?.isRecording()) return undefined;
    const rows = Object.values(feeds)[0]?.shape[0] ?? 0;
    return trace.getTracer('@recsys/serving').startSpan(`model run ${this.label}`, {
      attributes: {
        'recsys.model': this.label,
        'recsys.model.provider': this.provider,
        'recsys.model.thread': this.thread,
        'recsys.model.rows': rows,
      },
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.backend.release();
  }
}
