export interface AdamConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const ADAM_DEFAULTS: Omit<AdamConfig, 'lr'> = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Adam state of one parameter tensor, updated in place (PyTorch's formulation). */
export class AdamSlot {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  /** Per-row step counts, for lazy (row-sparse) updates of embedding tables. */
  private rowSteps?: Int32Array;

  constructor(readonly values: Float32Array) {
    this.m = new Float32Array(values.length);
    this.v = new Float32Array(values.length);
  }

  /** Dense update of every element with gradient `grad` at global step t (1-based). */
  update(grad: Float32Array, t: number, c: AdamConfig): void {
    this.updateRange(grad, 0, this.values.length, t, c);
  }

  /** Lazy update: only `rows` (each `width` wide) move, each with its own step count. */
  updateRows(grad: Float32Array, rows: Iterable<number>, width: number, c: AdamConfig): void {
    this.rowSteps ??= new Int32Array(this.values.length / width);
    for (const r of rows) this.updateRange(grad, r * width, (r + 1) * width, ++this.rowSteps[r]!, c);
  }

  private updateRange(grad: Float32Array, from: number, to: number, t: number, c: AdamConfig): void {
    const { m, v, values } = this;
    const { beta1, beta2, eps } = c;
    const stepSize = c.lr / (1 - beta1 ** t);
    const bc2 = Math.sqrt(1 - beta2 ** t);
    for (let k = from; k < to; k++) {
      const gk = grad[k]!;
      const mk = beta1 * m[k]! + (1 - beta1) * gk;
      const vk = beta2 * v[k]! + (1 - beta2) * gk * gk;
      m[k] = mk;
      v[k] = vk;
      values[k]! -= (stepSize * mk) / (Math.sqrt(vk) / bc2 + eps);
    }
  }
}
