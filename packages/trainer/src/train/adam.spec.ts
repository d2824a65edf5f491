import { AdamSlot } from './adam';

/** PyTorch's Adam in float64, written out independently. */
function reference(p0: number, grads: number[], lr: number): number {
  let [p, m, v] = [p0, 0, 0];
  grads.forEach((gr, k) => {
    const t = k + 1;
    m = 0.9 * m + 0.1 * gr;
    v = 0.999 * v + 0.001 * gr * gr;
    const mHat = m / (1 - 0.9 ** t);
    const vHat = v / (1 - 0.999 ** t);
    p -= (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
  });
  return p;
}

describe('AdamSlot', () => {
  const c = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

  it('matches Adam with bias correction over several steps', () => {
    const values = Float32Array.of(1, -2);
    const slot = new AdamSlot(values);
    const grads = [
      [0.5, -1],
      [0.1, 3],
      [-0.4, 0.2],
    ];
    grads.forEach((gr, k) => slot.update(Float32Array.from(gr), k + 1, c));
    expect(values[0]).toBeCloseTo(reference(1, [0.5, 0.1, -0.4], 0.01), 6);
    expect(values[1]).toBeCloseTo(reference(-2, [-1, 3, 0.2], 0.01), 6);
  });

  it('moves only the touched rows, each on its own step count, when lazy', () => {
    const values = Float32Array.of(1, 1, 2, 2, 3, 3);
    const slot = new AdamSlot(values);
    const grad = Float32Array.of(0, 0, 1, 1, 0, 0);
    slot.updateRows(grad, [1], 2, c);
    expect(Array.from(values)).toEqual([1, 1, Math.fround(reference(2, [1], 0.01)), Math.fround(reference(2, [1], 0.01)), 3, 3]);
    grad.set([1, 1], 0);
    slot.updateRows(grad, [0], 2, c);
    // Row 0's first update uses step 1 bias correction, although it is the second call.
    expect(values[0]).toBeCloseTo(reference(1, [1], 0.01), 6);
  });
});
