import type { Random } from '@recsys/data';
import type { Tensor } from '../graph/evaluate.js';
import type { TrainingCurvePoint } from '../eval/report.js';
import type { GraphTrainer } from './graph-trainer.js';

export interface Progress {
  model: string;
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  examplesPerS: number;
}

export type ProgressListener = (progress: Progress) => void;

export interface LoopOptions {
  model: string;
  /** Number of training examples; batches are drawn from a fresh permutation of 0..count-1 each epoch. */
  count: number;
  epochs: number;
  batchSize: number;
  rng: Random;
  trainer: GraphTrainer;
  /** Feeds for the examples `batch` (indices into 0..count-1); `step` is the 1-based global step. */
  feeds: (batch: Int32Array, step: number) => Record<string, Tensor>;
  onProgress?: ProgressListener;
  /** Curve points per epoch. */
  curvePoints?: number;
}

export interface LoopResult {
  curve: TrainingCurvePoint[];
  examples: number;
  seconds: number;
  examplesPerS: number;
}

/** Epochs of shuffled mini-batches; records the loss curve and throughput (the whole loop is timed, feeds included). */
export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const stepsPerEpoch = Math.ceil(o.count / o.batchSize);
  const every = Math.max(1, Math.floor(stepsPerEpoch / (o.curvePoints ?? 20)));
  const curve: TrainingCurvePoint[] = [];
  const start = performance.now();
  let examples = 0;
  let step = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const order = o.rng.permutation(o.count);
    for (let s = 0; s < o.count; s += o.batchSize) {
      const batch = order.subarray(s, Math.min(o.count, s + o.batchSize));
      step++;
      const loss = await o.trainer.train(o.feeds(batch, step));
      if (!Number.isFinite(loss))
        throw new Error(`${o.model}: loss became ${loss} at step ${step} (epoch ${epoch}); lower the learning rate`);
      examples += batch.length;
      windowLoss += loss;
      windowSteps++;
      if (step % every === 0 || s + o.batchSize >= o.count) {
        const seconds = (performance.now() - start) / 1000;
        const point = { step, epoch, examples, loss: windowLoss / windowSteps, examplesPerS: examples / seconds };
        curve.push(point);
        windowLoss = 0;
        windowSteps = 0;
        o.onProgress?.({
          model: o.model,
          epoch,
          epochs: o.epochs,
          step,
          stepsPerEpoch,
          loss: point.loss,
          examplesPerS: point.examplesPerS,
        });
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { curve, examples, seconds, examplesPerS: examples / seconds };
}
