import type { Tensor } from '@recsys/model-format';
import type { ExecutionProvider, OrtSessionSettings, ProviderFailure } from './ort-session-create.js';

/** The worker's workerData: the model and how to make its session. */
export interface WorkerStart {
  bytes: Uint8Array;
  settings: OrtSessionSettings;
  label: string;
}

/** From ModelSession to its worker. Feeds arrive as copies the worker owns (transferred). */
export type WorkerRequest = { kind: 'run'; id: number; feeds: Record<string, Tensor> } | { kind: 'release' };

/** From the worker to ModelSession. Outputs are transferred, not copied. */
export type WorkerReply =
  | {
      kind: 'ready';
      provider: ExecutionProvider;
      failures: ProviderFailure[];
      inputNames: string[];
      outputNames: string[];
    }
  | { kind: 'failed'; message: string }
  | { kind: 'ran'; id: number; outputs: Record<string, Float32Array> }
  | { kind: 'run-failed'; id: number; message: string };
