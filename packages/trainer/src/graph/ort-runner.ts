import * as ort from 'onnxruntime-node';
import type { Tensor } from './evaluate.js';

export interface RunnerOptions {
  /** onnxruntime intra-op threads; 0 lets it choose (one per core). */
  threads?: number;
}

/** An ONNX graph run by onnxruntime-node on CPU, fed and answered with plain typed arrays. */
export class OrtRunner {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(model: Uint8Array, options: RunnerOptions = {}): Promise<OrtRunner> {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
    return new OrtRunner(session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  async run(feeds: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds))
      ortFeeds[name] = new ort.Tensor(t.data instanceof Int32Array ? 'int32' : 'float32', t.data, t.shape);
    const result = outputs ? await this.session.run(ortFeeds, outputs as string[]) : await this.session.run(ortFeeds);
    const out: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(result)) {
      out[name] = { data: value.data as Float32Array | Int32Array, shape: value.dims.map(Number) };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
