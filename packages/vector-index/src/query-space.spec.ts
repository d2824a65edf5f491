import { VectorIndexArgumentError } from './errors.js';
import { fitQuerySpace, graphItems, graphQuery, symmetricEigen } from './query-space.js';
import { modalityGapVectors } from './synthetic-vectors.js';

const DIM = 8;

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum += a[ao + j]! * b[bo + j]!;
  return sum;
}

describe('query-aware space', () => {
  const { items, queries } = modalityGapVectors({ items: 500, queries: 200, dim: DIM, seed: 4 });

  it('decomposes a symmetric matrix: V·diag(λ)·Vᵀ gives it back', () => {
    const m = new Float64Array([4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1]);
    const { values, vectors } = symmetricEigen(m, 3);
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) {
        let sum = 0;
        for (let k = 0; k < 3; k++) sum += vectors[a * 3 + k]! * values[k]! * vectors[b * 3 + k]!;
        expect(sum).toBeCloseTo(m[a * 3 + b]!, 10);
      }
  });

  it('maps items and queries so that the L2 ranking is exactly the inner-product ranking', () => {
    const space = fitQuerySpace(queries, DIM);
    expect(space.queries).toBe(200);
    const graph = graphItems(space, items, false);
    const width = DIM + 1;
    // All items share one norm in the graph's space: distance = R² + |A⁻¹q|² − 2·q·x.
    const norms = Array.from({ length: 500 }, (_, i) => dot(graph, i * width, graph, i * width, width));
    for (const n of norms) expect(n).toBeCloseTo(norms[0]!, 3);
    for (let q = 0; q < 5; q++) {
      const query = queries.subarray(q * DIM, (q + 1) * DIM);
      const mapped = graphQuery(space, query);
      const constant = norms[0]! + dot(mapped, 0, mapped, 0, width);
      for (let i = 0; i < 500; i += 37) {
        let distance = 0;
        for (let j = 0; j < width; j++) distance += (graph[i * width + j]! - mapped[j]!) ** 2;
        expect(distance).toBeCloseTo(constant - 2 * dot(query, 0, items, i * DIM, DIM), 3);
      }
    }
  });

  it('puts items close together when typical queries score them alike', () => {
    const space = fitQuerySpace(queries, DIM);
    const graph = graphItems(space, items, false);
    const width = DIM + 1;
    // Over item pairs, the graph distance tracks the queries' mean squared score difference better than the raw one.
    const raw: number[] = [];
    const mapped: number[] = [];
    const scored: number[] = [];
    for (let p = 0; p < 200; p++) {
      const a = p;
      const b = (p * 7 + 13) % 500;
      let r = 0;
      let g = 0;
      for (let j = 0; j < DIM; j++) r += (items[a * DIM + j]! - items[b * DIM + j]!) ** 2;
      for (let j = 0; j < DIM; j++) g += (graph[a * width + j]! - graph[b * width + j]!) ** 2;
      let s = 0;
      for (let q = 0; q < 200; q++) s += (dot(queries, q * DIM, items, a * DIM, DIM) - dot(queries, q * DIM, items, b * DIM, DIM)) ** 2;
      raw.push(r);
      mapped.push(g);
      scored.push(s / 200);
    }
    expect(correlation(mapped, scored)).toBeGreaterThan(0.99);
    expect(correlation(raw, scored)).toBeLessThan(correlation(mapped, scored) - 0.1);
  });

  it('refuses samples that are empty, ragged or not finite, naming the field', () => {
    expect(() => fitQuerySpace(new Float32Array(0), DIM)).toThrow(VectorIndexArgumentError);
    expect(() => fitQuerySpace(new Float32Array(DIM + 1), DIM)).toThrow(
      'querySample: expected a non-empty Float32Array of rows of 8 values',
    );
    const nan = queries.slice(0, DIM * 2);
    nan[DIM + 3] = NaN;
    expect(() => fitQuerySpace(nan, DIM)).toThrow('querySample: row 1 has a non-finite value');
    expect(() => fitQuerySpace(new Float32Array(DIM * 3), DIM)).toThrow('querySample: every query is zero');
  });
});

function correlation(x: number[], y: number[]): number {
  const mean = (v: number[]) => v.reduce((s, a) => s + a, 0) / v.length;
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}
