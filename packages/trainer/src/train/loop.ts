import { type WarmStart, applyWarmStart } from './warm-start.js';
import type { Random } from '@recsys/data';
import type { Tensor } from '../graph/evaluate.js';
import type { Node } from '../graph/graph.js';
import type { TrainingCurvePoint } from '../eval/report.js';
import { GraphTrainer, type GraphTrainerOptions } from './graph-trainer.js';

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

/** What every model's training takes. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** onnxruntime intra-op threads per step. */
  threads?: number;
  lazyEmbeddings?: GraphTrainerOptions['lazyEmbeddings'];
  onProgress?: ProgressListener;
  /** Epochs without a better validation score before training stops (with a validation slice); undefined runs every epoch. */
  patience?: number;
  /** Params to start from (a published version's), where names and shapes match. */
  warmStart?: WarmStart;
}

/** The loop settings that come straight from a model's TrainOptions. */
export function fromTrainOptions(o: TrainOptions) {
  return {
    epochs: o.epochs,
    batchSize: o.batchSize,
    onProgress: o.onProgress,
    warmStart: o.warmStart,
    optimizer: { lr: o.lr, threads: o.threads, lazyEmbeddings: o.lazyEmbeddings },
  };
}

export interface LoopOptions {
  model: string;
  /** Number of training examples; batches are drawn from a fresh permutation of 0..count-1 each epoch. */
  count: number;
  epochs: number;
  batchSize: number;
  rng: Random;
  /** The graph trained: a scalar loss and the params it moves. */
  loss: Node;
  params: readonly Node[];
  optimizer: GraphTrainerOptions;
  /** Feeds for the examples `batch` (indices into 0..count-1); `step` is the 1-based global step. */
  feeds: (batch: Int32Array, step: number) => Record<string, Tensor>;
  onProgress?: ProgressListener;
  /** Curve points per epoch. */
  curvePoints?: number;
  /** Validation after each epoch: the loop keeps the params of the best epoch and may stop early. */
  validation?: EpochValidation;
  warmStart?: WarmStart;
}

/** Scores the model (its params as they stand) after an epoch; higher `score` is better. */
export interface EpochValidation {
  evaluate: (epoch: number) => Promise<{ score: number; metrics: Record<string, number> }>;
  /** Stop after this many epochs without a better score (undefined: run every epoch, still keep the best). */
  patience?: number;
}

export interface ValidationPoint {
  epoch: number;
  score: number;
  metrics: Record<string, number>;
}

export interface LoopResult {
  curve: TrainingCurvePoint[];
  examples: number;
  /** Training seconds: validation passes are not counted. */
  seconds: number;
  examplesPerS: number;
  /** Per epoch, when validated. */
  validation?: ValidationPoint[];
  /** The epoch whose params the model holds (the best validated one; the last without validation). */
  bestEpoch: number;
  /** Epochs trained (fewer than asked when stopped early). */
  epochsRun: number;
  /** Params started from a published version's (same name and shape), of all. */
  warmStarted?: { copied: number; total: number };
}

/** Epochs of shuffled mini-batches; records the loss curve and throughput (the whole loop is timed, feeds included). */
export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const warm = o.warmStart ? applyWarmStart(o.params, o.warmStart) : undefined;
  const trainer = await GraphTrainer.create(o.loss, o.params, o.optimizer);
  try {
    const result = await epochs(o, trainer);
    return warm ? { ...result, warmStarted: { copied: warm.copied, total: warm.total } } : result;
  } finally {
    await trainer.release();
  }
}

/** Feeds of a mean-BCE batch: its labels and 1/B. */
export function labelFeeds(labels: Float32Array, batch: Int32Array): Record<string, Tensor> {
  return {
    labels: { data: Float32Array.from(batch, (k) => labels[k]!), shape: [batch.length] },
    inv_batch: { data: Float32Array.of(1 / batch.length), shape: [] },
  };
}

async function epochs(o: LoopOptions, trainer: GraphTrainer): Promise<LoopResult> {
  const stepsPerEpoch = Math.ceil(o.count / o.batchSize);
  const every = Math.max(1, Math.floor(stepsPerEpoch / (o.curvePoints ?? 20)));
  const curve: TrainingCurvePoint[] = [];
  let start = performance.now();
  const validation: ValidationPoint[] = [];
  let best: { epoch: number; score: number; params: Float32Array[] } | undefined;
  let epochsRun = 0;
  let examples = 0;
  let step = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const order = o.rng.permutation(o.count);
    for (let s = 0; s < o.count; s += o.batchSize) {
      const batch = order.subarray(s, Math.min(o.count, s + o.batchSize));
      step++;
      const loss = await trainer.train(o.feeds(batch, step));
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
    epochsRun = epoch;
    if (!o.validation) continue;
    const pausedAt = performance.now();
    const { score, metrics } = await o.validation.evaluate(epoch);
    validation.push({ epoch, score, metrics });
    if (!best || score > best.score) best = { epoch, score, params: o.params.map((p) => Float32Array.from(p.data as Float32Array)) };
    // The validation pass is not training time.
    start += performance.now() - pausedAt;
    if (o.validation.patience !== undefined && epoch - best.epoch >= o.validation.patience) break;
  }
  const seconds = (performance.now() - start) / 1000;
  if (best && best.epoch !== epochsRun) o.params.forEach((p, k) => (p.data as Float32Array).set(best.params[k]!));
  return {
    curve,
    examples,
    seconds,
    examplesPerS: examples / seconds,
    ...(o.validation ? { validation } : {}),
    bestEpoch: best?.epoch ?? epochsRun,
    epochsRun,
  };
}
