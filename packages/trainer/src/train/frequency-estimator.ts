/**
 * Streaming item-frequency estimator of Yi et al. 2019 (Algorithm 2): for each hashed item, A holds
 * the step it was last seen and B a moving average of the gap between sightings; p(item) ≈ 1 / B.
 */
export class FrequencyEstimator {
  private readonly last: Float64Array;
  private readonly gap: Float64Array;

  constructor(
    readonly size = 1 << 16,
    readonly alpha = 0.01,
    initialGap = 100,
  ) {
    this.last = new Float64Array(size);
    this.gap = new Float64Array(size).fill(initialGap);
  }

  private slot(id: number): number {
    return (Math.imul(id, 2654435761 | 0) >>> 0) % this.size;
  }

  /**
   * Records a batch seen at `step` and returns log p for each of its items. Every update in a batch
   * reads the state before the batch (a repeated item gets one update), as a vectorised implementation does.
   */
  update(ids: ArrayLike<number>, step: number, logp: Float32Array = new Float32Array(ids.length)): Float32Array {
    const slots = Int32Array.from({ length: ids.length }, (_, k) => this.slot(ids[k]!));
    const fresh = new Float64Array(ids.length);
    for (let k = 0; k < slots.length; k++) {
      const h = slots[k]!;
      fresh[k] = (1 - this.alpha) * this.gap[h]! + this.alpha * (step - this.last[h]!);
    }
    for (let k = 0; k < slots.length; k++) {
      this.gap[slots[k]!] = fresh[k]!;
      this.last[slots[k]!] = step;
    }
    for (let k = 0; k < slots.length; k++) logp[k] = -Math.log(this.gap[slots[k]!]!);
    return logp;
  }

  /** The current estimate of p(item). */
  probability(id: number): number {
    return 1 / this.gap[this.slot(id)]!;
  }
}
