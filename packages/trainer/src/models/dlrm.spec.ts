import { type FeatureSpec, Random } from '@recsys/data';
import { evaluate } from '../graph/evaluate';
import { DLRM_DEFAULTS, Dlrm, lowerTrianglePairs } from './dlrm';

const spec: FeatureSpec = {
  features: [
    { name: 'a', kind: 'categorical', source: 'user', column: 'a', vocabulary: ['0', '1', '2'], unknown: 0 },
    { name: 'b', kind: 'categorical', source: 'item', column: 'b', vocabulary: ['0', '1', '2', '3'], unknown: 0 },
    { name: 'x', kind: 'continuous', source: 'user', column: 'x', transform: 'identity', mean: 0, std: 1, missing: 0 },
    { name: 'y', kind: 'continuous', source: 'item', column: 'y', transform: 'identity', mean: 0, std: 1, missing: 0 },
  ],
};

function matvec(x: number[], w: Float32Array, b: Float32Array, out: number, relu: boolean): number[] {
  return Array.from({ length: out }, (_, j) => {
    const s = x.reduce((acc, xi, i) => acc + xi * w[i * out + j]!, b[j]!);
    return relu ? Math.max(0, s) : s;
  });
}

describe('Dlrm', () => {
  it('orders interaction pairs as torch.tril_indices(f, f, offset=-1)', () => {
    expect(lowerTrianglePairs(4)).toEqual([
      [1, 0],
      [2, 0],
      [2, 1],
      [3, 0],
      [3, 1],
      [3, 2],
    ]);
    expect(lowerTrianglePairs(9)).toHaveLength(36);
  });

  it('computes bottom MLP, dot interaction of [bottom, embeddings] and the top MLP as the reference', () => {
    const model = new Dlrm(spec, { ...DLRM_DEFAULTS, embeddingDim: 2, bottom: [3, 2], top: [4] }, new Random(1));
    expect(model.interactionPairs).toBe(3);
    const byName = new Map(model.params.map((p) => [p.name!, p.data as Float32Array]));
    const p = (name: string) => byName.get(name)!;
    const categorical = Int32Array.of(1, 3, 2, 0);
    const continuous = Float32Array.of(0.5, -1, 2, 0.25);
    const [probs] = evaluate([model.probability], {
      categorical: { data: categorical, shape: [2, 2] },
      continuous: { data: continuous, shape: [2, 2] },
    });
    for (let r = 0; r < 2; r++) {
      const dense = [continuous[2 * r]!, continuous[2 * r + 1]!];
      const x = matvec(matvec(dense, p('bottom.0.weight'), p('bottom.0.bias'), 3, true), p('bottom.1.weight'), p('bottom.1.bias'), 2, true);
      const ea = Array.from(p('emb.a').subarray(categorical[2 * r]! * 2, categorical[2 * r]! * 2 + 2));
      const eb = Array.from(p('emb.b').subarray(categorical[2 * r + 1]! * 2, categorical[2 * r + 1]! * 2 + 2));
      const t = [x, ea, eb];
      const dot = (u: number[], v: number[]) => u[0]! * v[0]! + u[1]! * v[1]!;
      const z = [dot(t[1]!, t[0]!), dot(t[2]!, t[0]!), dot(t[2]!, t[1]!)];
      const h = matvec([...x, ...z], p('top.0.weight'), p('top.0.bias'), 4, true);
      const logit = matvec(h, p('top.1.weight'), p('top.1.bias'), 1, false)[0]!;
      expect(probs!.data[r]).toBeCloseTo(1 / (1 + Math.exp(-logit)), 6);
    }
  });

  it('adds DCN-v2 cross layers over the concatenated vectors beside the dot interaction (dotdcn), or alone (dcn)', () => {
    const categorical = Int32Array.of(1, 3, 2, 0);
    const continuous = Float32Array.of(0.5, -1, 2, 0.25);
    const feeds = { categorical: { data: categorical, shape: [2, 2] }, continuous: { data: continuous, shape: [2, 2] } };
    for (const interaction of ['dotdcn', 'dcn'] as const) {
      const model = new Dlrm(
        spec,
        { ...DLRM_DEFAULTS, embeddingDim: 2, bottom: [3, 2], top: [4], interaction, crossLayers: 2 },
        new Random(3),
      );
      expect(model.interactionPairs).toBe(interaction === 'dcn' ? 0 : 3);
      const byName = new Map(model.params.map((p) => [p.name!, p.data as Float32Array]));
      const p = (name: string) => byName.get(name)!;
      const [probs] = evaluate([model.probability], feeds);
      for (let r = 0; r < 2; r++) {
        const dense = [continuous[2 * r]!, continuous[2 * r + 1]!];
        const x = matvec(
          matvec(dense, p('bottom.0.weight'), p('bottom.0.bias'), 3, true),
          p('bottom.1.weight'),
          p('bottom.1.bias'),
          2,
          true,
        );
        const ea = Array.from(p('emb.a').subarray(categorical[2 * r]! * 2, categorical[2 * r]! * 2 + 2));
        const eb = Array.from(p('emb.b').subarray(categorical[2 * r + 1]! * 2, categorical[2 * r + 1]! * 2 + 2));
        const x0 = [...x, ...ea, ...eb];
        let xl = x0;
        for (let l = 0; l < 2; l++) {
          const lin = matvec(xl, p(`cross.${l}.weight`), p(`cross.${l}.bias`), 6, false);
          xl = xl.map((v, k) => x0[k]! * lin[k]! + v);
        }
        const dot = (u: number[], v: number[]) => u[0]! * v[0]! + u[1]! * v[1]!;
        const z = [dot(ea, x), dot(eb, x), dot(eb, ea)];
        const top = interaction === 'dcn' ? xl : [...x, ...z, ...xl];
        const h = matvec(top, p('top.0.weight'), p('top.0.bias'), 4, true);
        const logit = matvec(h, p('top.1.weight'), p('top.1.bias'), 1, false)[0]!;
        expect(probs!.data[r]).toBeCloseTo(1 / (1 + Math.exp(-logit)), 6);
      }
    }
    expect(
      () =>
        new Dlrm(spec, { ...DLRM_DEFAULTS, embeddingDim: 2, bottom: [3, 2], top: [4], interaction: 'dcn', crossLayers: 0 }, new Random(1)),
    ).toThrow(/crossLayers/);
  });

  it('initialises as the DLRM reference: embeddings within ±sqrt(1/n)', () => {
    const model = new Dlrm(spec, { ...DLRM_DEFAULTS, embeddingDim: 2, bottom: [3, 2], top: [4] }, new Random(2));
    const table = model.params.find((q) => q.name === 'emb.b')!.data!;
    expect(Math.max(...Array.from(table, Math.abs))).toBeLessThanOrEqual(Math.sqrt(1 / 4));
  });

  it('refuses a bottom MLP that does not end at the embedding dim', () => {
    expect(() => new Dlrm(spec, { ...DLRM_DEFAULTS, embeddingDim: 4, bottom: [3, 2], top: [4] }, new Random(1))).toThrow(/embedding dim 4/);
  });
});
