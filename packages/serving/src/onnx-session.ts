import { SpanStatusCode, trace } from '@opentelemetry/api';
import * as ort from 'onnxruntime-node';
import type { InputDescription, Tensor } from '@recsys/model-format';

/** Execution providers a session may ask for, in the order of preference given by config. */
export const EXECUTION_PROVIDERS = ['cuda', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

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
  logger?: SessionLogger;
}

/** Input or output shape as declared: numbers are fixed, strings are free (the batch). */
export type DeclaredShape = readonly (number | string)[];

/** A feed that does not match the graph's declared inputs, caught before onnxruntime sees it. */
export class FeedError extends Error {
  override readonly name = 'FeedError';
}

function providerOption(provider: ExecutionProvider, options: ModelSessionOptions): ort.InferenceSession.ExecutionProviderConfig {
  return provider === 'cuda' ? { name: 'cuda', deviceId: options.cudaDeviceId ?? 0 } : 'cpu';
}

function describeFeeds(feeds: Record<string, Tensor>): string {
  return Object.entries(feeds)
    .map(([name, t]) => `${name}: ${t.data instanceof Int32Array ? 'int32' : 'float32'}[${t.shape.join(',')}]`)
    .join('; ');
}

/**
 * The one owner of onnxruntime-node sessions in serving: picks the execution provider from the
 * configured preference, checks feeds against the manifest's inputs before each run, reports tensor
 * metadata on failure and releases the native session on close.
 */
export class ModelSession {
  private released = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly label: string,
    readonly provider: ExecutionProvider,
    readonly inputs: readonly InputDescription[],
    readonly outputNames: readonly string[],
  ) {}

  static async create(bytes: Uint8Array, inputs: readonly InputDescription[], options: ModelSessionOptions): Promise<ModelSession> {
    const providers = options.providers?.length ? options.providers : (['cpu'] as const);
    const failures: string[] = [];
    for (const provider of providers) {
      try {
        const session = await ort.InferenceSession.create(bytes, {
          executionProviders: [providerOption(provider, options)],
          graphOptimizationLevel: 'all',
          intraOpNumThreads: options.intraOpThreads ?? 1,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          // Native warnings (e.g. a missing CUDA library) are reported by our own log line instead.
          logSeverityLevel: 3,
        });
        const declared = new Set(session.inputNames);
        const expected = inputs.map((i) => i.name);
        if (declared.size !== expected.length || expected.some((n) => !declared.has(n))) {
          await session.release();
          throw new FeedError(
            `${options.label}: the graph's inputs [${session.inputNames.join(', ')}] differ from the manifest's [${expected.join(', ')}]`,
          );
        }
        const fallback = failures.length ? { unavailable: failures } : {};
        options.logger?.info({ model: options.label, provider, ...fallback }, `${options.label} runs on ${provider}`);
        return new ModelSession(session, options.label, provider, inputs, session.outputNames);
      } catch (error) {
        if (error instanceof FeedError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${provider}: ${message}`);
        options.logger?.warn({ model: options.label, provider, error: message }, `${options.label}: ${provider} is unavailable`);
      }
    }
    throw new Error(`${options.label}: no execution provider could load the model (${failures.join('; ')})`);
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

  /** Runs the graph; outputs come back as float32 arrays by name. */
  async run(feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
    if (this.released) throw new Error(`${this.label}: the session was released`);
    this.checkFeeds(feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape);
    }
    const span = this.startRunSpan(feeds);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run(ortFeeds);
    } catch (error) {
      const failure = new Error(
        `${this.label}: onnxruntime failed on ${describeFeeds(feeds)}: ${error instanceof Error ? error.message : String(error)}`,
      );
      span?.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
      throw failure;
    } finally {
      span?.end();
    }
    const out: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(result)) out[name] = value.data as Float32Array;
    return out;
  }

  /**
   * A span for this run when the caller's span is being recorded (a sampled request); none otherwise, so
   * warm-ups stay out of traces and the untraced path only looks up the current span.
   */
  private startRunSpan(feeds: Record<string, Tensor>) {
    if (!trace.getActiveSpan()?.isRecording()) return undefined;
    const rows = Object.values(feeds)[0]?.shape[0] ?? 0;
    return trace.getTracer('@recsys/serving').startSpan(`model run ${this.label}`, {
      attributes: { 'recsys.model': this.label, 'recsys.model.provider': this.provider, 'recsys.model.rows': rows },
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
