import { gradients } from '../graph/autodiff.js';
import type { Tensor } from '../graph/evaluate.js';
import type { Node } from '../graph/graph.js';
import { toOnnxModel } from '../graph/onnx.js';
import { OrtRunner } from '../graph/ort-runner.js';
import { ADAM_DEFAULTS, type AdamConfig, AdamSlot } from './adam.js';

export interface GraphTrainerOptions {
  lr: number;
  adam?: Partial<Omit<AdamConfig, 'lr'>>;
  /**
   * Update only the embedding rows a batch touched (LazyAdam) instead of every row (dense Adam, as
   * PyTorch). 'auto' (the default): lazy for tables of more than LAZY_TABLE_ROWS rows, where a dense
   * update per step would cost more than the step itself.
   */
  lazyEmbeddings?: boolean | 'auto';
  /** onnxruntime intra-op threads (0: one per core). */
  threads?: number;
}

export const LAZY_TABLE_ROWS = 50_000;

interface SparseSlot {
  param: Node;
  slot: AdamSlot;
  grad: Float32Array;
  width: number;
  lazy: boolean;
  outputs: { indices: string; rows: string }[];
}

/**
 * Trains a graph's params: one onnxruntime run per step computes the loss and every gradient
 * (the backward graph comes from autodiff), then Adam updates the params in place in TypeScript.
 */
export class GraphTrainer {
  private step = 0;

  private constructor(
    private readonly runner: OrtRunner,
    private readonly params: readonly Node[],
    private readonly dense: { param: Node; slot: AdamSlot; output: string }[],
    private readonly sparse: SparseSlot[],
    private readonly config: AdamConfig,
  ) {}

  static async create(loss: Node, params: readonly Node[], options: GraphTrainerOptions): Promise<GraphTrainer> {
    const grads = gradients(loss, params);
    const outputs: Record<string, Node> = { loss };
    const dense = [...grads.dense].map(([param, grad], k) => {
      outputs[`grad_${k}`] = grad;
      return { param, slot: new AdamSlot(param.data as Float32Array), output: `grad_${k}` };
    });
    const sparse = [...grads.sparse].map(([param, uses], k): SparseSlot => {
      const names = uses.map((use, u) => {
        outputs[`idx_${k}_${u}`] = use.indices;
        outputs[`rows_${k}_${u}`] = use.rows;
        return { indices: `idx_${k}_${u}`, rows: `rows_${k}_${u}` };
      });
      const values = param.data as Float32Array;
      const rows = param.shape[0] as number;
      const lazy =
        options.lazyEmbeddings === 'auto' || options.lazyEmbeddings === undefined ? rows > LAZY_TABLE_ROWS : options.lazyEmbeddings;
      return {
        param,
        slot: new AdamSlot(values),
        grad: new Float32Array(values.length),
        width: param.shape[1] as number,
        lazy,
        outputs: names,
      };
    });
    const model = toOnnxModel({ name: 'train_step', outputs, params: 'input' });
    const runner = await OrtRunner.create(model, { threads: options.threads ?? 0 });
    return new GraphTrainer(runner, params, dense, sparse, { lr: options.lr, ...ADAM_DEFAULTS, ...options.adam });
  }

  /** One optimisation step on a batch; returns its loss. */
  async train(feeds: Record<string, Tensor>): Promise<number> {
    const all: Record<string, Tensor> = { ...feeds };
    for (const p of this.params) all[p.name!] = { data: p.data as Float32Array, shape: p.shape as number[] };
    const out = await this.runner.run(all);
    const t = ++this.step;
    for (const d of this.dense) d.slot.update(out[d.output]!.data as Float32Array, t, this.config);
    for (const s of this.sparse) {
      const touched = new Set<number>();
      const { grad, width } = s;
      const { lazy } = s;
      if (!lazy) grad.fill(0);
      for (const o of s.outputs) {
        const idx = out[o.indices]!.data;
        const rows = out[o.rows]!.data;
        for (let k = 0; k < idx.length; k++) {
          const r = idx[k]!;
          if (lazy && !touched.has(r)) {
            grad.fill(0, r * width, (r + 1) * width);
            touched.add(r);
          }
          for (let j = 0; j < width; j++) grad[r * width + j]! += rows[k * width + j]!;
        }
      }
      if (lazy) s.slot.updateRows(grad, touched, width, this.config);
      else s.slot.update(grad, t, this.config);
    }
    return out.loss!.data[0]!;
  }

  get steps(): number {
    return this.step;
  }

  async release(): Promise<void> {
    await this.runner.release();
  }
}
