/** The last `size` latencies of one stage in a ring, and their percentiles. */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly size: number) {
    this.values = new Float64Array(size);
  }

  add(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    if (this.filled < this.size) this.filled++;
  }

  get count(): number {
    return this.filled;
  }

  clear(): void {
    this.next = 0;
    this.filled = 0;
  }

  /** The p-th percentile (nearest rank) of what the window holds; NaN when empty. */
  percentile(p: number): number {
    if (this.filled === 0) return NaN;
    const sorted = this.values.slice(0, this.filled).sort();
    const rank = Math.min(this.filled - 1, Math.max(0, Math.ceil((p / 100) * this.filled) - 1));
    return sorted[rank]!;
  }
}
