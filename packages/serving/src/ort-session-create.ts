import type * as ort from 'onnxruntime-node';
import type { Tensor } from '@recsys/model-format';
import { errorMessage } from './error-message.js';

let runtime: typeof ort | undefined;

/**
 * onnxruntime-node, loaded with the first session made: a process that reaches this package without loading a model
 * (re-ranking, through the stage layer) does not load the native library (about 9 MiB of its idle RSS).
 */
export function onnxRuntime(): typeof ort {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  return (runtime ??= require('onnxruntime-node') as typeof ort);
}

/** Execution providers a session may ask for, in the order of preference given by config. */
export const EXECUTION_PROVIDERS = ['cuda', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** How an onnxruntime session is made: the same on the event loop's thread and in a session worker. */
export interface OrtSessionSettings {
  /** Tried in order; the first that creates a session serves. */
  providers: readonly ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
}

/** Why a provider of the preference could not make the session. */
export interface ProviderFailure {
  provider: ExecutionProvider;
  message: string;
}

/** The session made, the provider that made it, and why each provider before it could not. */
export interface CreatedOrtSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  failures: ProviderFailure[];
}

function providerOption(provider: ExecutionProvider, settings: OrtSessionSettings): ort.InferenceSession.ExecutionProviderConfig {
  return provider === 'cuda' ? { name: 'cuda', deviceId: settings.cudaDeviceId } : 'cpu';
}

/** The first provider of the preference that loads the model; throws, listing every provider's failure, when none does. */
export async function createOrtSession(bytes: Uint8Array, settings: OrtSessionSettings, label: string): Promise<CreatedOrtSession> {
  const failures: ProviderFailure[] = [];
  for (const provider of settings.providers) {
    try {
      const session = await onnxRuntime().InferenceSession.create(bytes, {
        executionProviders: [providerOption(provider, settings)],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: settings.intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // Native warnings (e.g. a missing CUDA library) are reported by our own log line instead.
        logSeverityLevel: 3,
      });
      return { session, provider, failures };
    } catch (error) {
      failures.push({ provider, message: errorMessage(error) });
    }
  }
  throw new Error(
    `${label}: no execution provider could load the model (${failures.map((f) => `${f.provider}: ${f.message}`).join('; ')})`,
  );
}

/** Runs the session on these feeds; outputs come back as float32 arrays by name. */
export async function runOrtSession(session: ort.InferenceSession, feeds: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const { Tensor: OrtTensor } = onnxRuntime();
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    ortFeeds[name] = new OrtTensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape);
  }
  const result = await session.run(ortFeeds);
  const out: Record<string, Float32Array> = {};
  for (const [name, value] of Object.entries(result)) out[name] = value.data as Float32Array;
  return out;
}
