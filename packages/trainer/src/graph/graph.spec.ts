import { Random } from '@recsys/data';
import { gradients } from './autodiff';
import { type Tensor, evaluate } from './evaluate';
import { type Node, g, nn } from './graph';
import { toOnnxModel } from './onnx';
import { OrtRunner } from './ort-runner';

const rng = new Random(7);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

/** A graph using every differentiable op: embeddings, MLP, dot interaction, normalisation, both losses. */
function buildGraph() {
  const B = 'B';
  const ids = g.input('ids', [B, 2], 'int32');
  const dense = g.input('dense', [B, 3]);
  const labels = g.input('labels', [B]);
  const onehot = g.input('onehot', [B, B]);
  const table = g.param('table', [11, 4], randn(44, 0.5));
  const w1 = g.param('w1', [3, 4], randn(12, 0.5));
  const b1 = g.param('b1', [4], randn(4, 0.1));
  const w2 = g.param('w2', [4 + 3, 1], randn(7, 0.5));
  const scale = g.param('scale', [1], Float32Array.of(0.7));
  const e0 = g.gather(table, g.column(ids, 0));
  const e1 = g.gather(table, g.column(ids, 1));
  const x = g.relu(nn.linear(dense, w1, b1));
  const stacked = g.reshape(g.concat([x, e0, e1], 1), [B, 3, 4]);
  const z = g.reshape(g.matmul(stacked, g.transpose(stacked, [0, 2, 1])), [B, 9]);
  const pairs = g.selectColumns(z, [3, 6, 7]);
  const logit = g.reshape(g.matmul(g.concat([x, pairs], 1), w2), [B]);
  const bce = g.reduceSum(g.bceWithLogits(g.mul(logit, scale), labels), [0]);
  const u = nn.l2Normalize(g.sigmoid(g.add(e0, x)));
  const v = nn.l2Normalize(g.sub(g.exp(g.mul(e1, g.scalar(0.5))), g.div(x, g.add(g.sqrt(g.mul(x, x)), g.scalar(1)))));
  const logits = g.div(g.matmul(u, g.transpose(v)), g.scalar(0.3));
  const ce = g.neg(g.reduceSum(g.mul(onehot, g.logSoftmax(logits)), [0, 1]));
  const loss = g.add(bce, g.mul(ce, g.scalar(0.5)));
  return { loss, params: [table, w1, b1, w2, scale], logit };
}

function feeds(batch: number): Record<string, Tensor> {
  const ids = Int32Array.from({ length: batch * 2 }, () => rng.int(11));
  const onehot = new Float32Array(batch * batch);
  for (let i = 0; i < batch; i++) onehot[i * batch + i] = 1;
  return {
    ids: { data: ids, shape: [batch, 2] },
    dense: { data: randn(batch * 3), shape: [batch, 3] },
    labels: { data: Float32Array.from({ length: batch }, () => rng.int(2)), shape: [batch] },
    onehot: { data: onehot, shape: [batch, batch] },
  };
}

/** Dense gradient of a param: dense rule, or its sparse rows scattered. */
function denseGrad(param: Node, grads: ReturnType<typeof gradients>, values: Map<Node, Tensor>): Float32Array {
  const dense = grads.dense.get(param);
  if (dense) return values.get(dense)!.data as Float32Array;
  const d = param.shape[1] as number;
  const out = new Float32Array(param.data!.length);
  for (const s of grads.sparse.get(param)!) {
    const idx = values.get(s.indices)!.data;
    const rows = values.get(s.rows)!.data;
    for (let k = 0; k < idx.length; k++) for (let j = 0; j < d; j++) out[idx[k]! * d + j]! += rows[k * d + j]!;
  }
  return out;
}

function gradientNodes(grads: ReturnType<typeof gradients>): Node[] {
  return [...grads.dense.values(), ...[...grads.sparse.values()].flat().flatMap((s) => [s.indices, s.rows])];
}

describe('graph autodiff', () => {
  it('matches central finite differences for every param', () => {
    const { loss, params } = buildGraph();
    const grads = gradients(loss, params);
    expect(grads.sparse.has(params[0]!)).toBe(true);
    const fed = feeds(5);
    const nodes = gradientNodes(grads);
    const values = new Map(nodes.map((n, k) => [n, evaluate(nodes, fed)[k]!]));
    for (const p of params) {
      const analytic = denseGrad(p, grads, values);
      const data = p.data as Float32Array;
      for (let k = 0; k < data.length; k++) {
        const keep = data[k]!;
        const h = 1e-2;
        data[k] = keep + h;
        const up = evaluate([loss], fed)[0]!.data[0]!;
        data[k] = keep - h;
        const down = evaluate([loss], fed)[0]!.data[0]!;
        data[k] = keep;
        const numeric = (up - down) / (2 * h);
        expect(Math.abs(numeric - analytic[k]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
      }
    }
  });

  it('gives the same loss and gradients in TypeScript and onnxruntime', async () => {
    const { loss, params } = buildGraph();
    const grads = gradients(loss, params);
    const outputs: Record<string, Node> = { loss };
    grads.dense.forEach((n, p) => (outputs[`grad_${p.name}`] = n));
    grads.sparse.get(params[0]!)!.forEach((s, k) => (outputs[`rows_${k}`] = s.rows));
    const runner = await OrtRunner.create(toOnnxModel({ name: 'check', outputs, params: 'input' }));
    const fed = feeds(6);
    const paramFeeds = Object.fromEntries(params.map((p) => [p.name!, { data: p.data!, shape: p.shape as number[] }]));
    const fromOrt = await runner.run({ ...fed, ...paramFeeds });
    const names = Object.keys(outputs);
    const fromTs = evaluate(Object.values(outputs), fed);
    names.forEach((name, k) => {
      const a = fromTs[k]!.data;
      const b = fromOrt[name]!.data;
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(a[i]!)));
    });
    await runner.release();
  });

  it('rejects shapes that do not fit', () => {
    const a = g.input('a', ['B', 3]);
    expect(() => g.matmul(a, g.param('w', [4, 2], new Float32Array(8)))).toThrow(/inner dims/);
    expect(() => g.add(a, g.input('c', ['B', 4]))).toThrow(/broadcast/);
    expect(() => g.param('w', [2, 2], new Float32Array(3))).toThrow(/3 values/);
  });
});
