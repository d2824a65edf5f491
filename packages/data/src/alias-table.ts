import { type Random } from './random.js';

// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { floor } = Math;
const { isFinite: finite } = Number;

/** Walker/Vose alias table: O(n) to build, O(1) to draw an index with probability proportional to its weight. */
export class AliasTable {
  readonly size: number;
  private readonly probability: Float64Array;
  private readonly alias: Int32Array;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    if (n === 0) throw new Error('AliasTable: no weights');
    let total = 0;
    for (let k = 0; k < n; k++) {
      const w = weights[k]!;
      if (!(w >= 0) || !finite(w)) throw new Error(`AliasTable: weight ${k} is ${w}; weights must be finite and >= 0`);
      total += w;
    }
    if (!(total > 0)) throw new Error('AliasTable: the weights sum to 0');
    this.size = n;
    this.probability = new Float64Array(n);
    this.alias = new Int32Array(n);
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let smalls = 0;
    let larges = 0;
    for (let k = 0; k < n; k++) {
      scaled[k] = (weights[k]! * n) / total;
      if (scaled[k]! < 1) small[smalls++] = k;
      else large[larges++] = k;
    }
    while (smalls > 0 && larges > 0) {
      const s = small[--smalls]!;
      const l = large[--larges]!;
      this.probability[s] = scaled[s]!;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      if (scaled[l]! < 1) small[smalls++] = l;
      else large[larges++] = l;
    }
    // What is left is 1 up to rounding.
    while (larges > 0) this.probability[large[--larges]!] = 1;
    while (smalls > 0) this.probability[small[--smalls]!] = 1;
  }

  sample(random: Random): number {
    const u = random.next() * this.size;
    const k = floor(u);
    return u - k < this.probability[k]! ? k : this.alias[k]!;
  }
}
