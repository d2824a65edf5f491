import { type Node, type Shape, g, topoSort } from './graph.js';

/** The rows of an embedding table a batch touched, and their gradients ([...indices.shape, d]). */
export interface SparseGradient {
  indices: Node;
  rows: Node;
}

export interface Gradients {
  /** Params used densely (MLP weights): one gradient node each. */
  dense: Map<Node, Node>;
  /** Embedding tables (params read only through gather): the gathered rows' gradients, scattered by the optimiser. */
  sparse: Map<Node, SparseGradient[]>;
}

function fail(node: Node, message: string): never {
  throw new Error(`autodiff: ${node.op}: ${message}`);
}

/** Sums g (shaped like a broadcast result) back down to `shape`. */
function unbroadcast(grad: Node, shape: Shape): Node {
  let out = grad;
  const extra = out.shape.length - shape.length;
  if (extra > 0)
    out = g.reduceSum(
      out,
      Array.from({ length: extra }, (_, k) => k),
    );
  const axes = shape.flatMap((d, k) => (d === 1 && out.shape[k] !== 1 ? [k] : []));
  return axes.length ? g.reduceSum(out, axes, true) : out;
}

/** Gradient rules: the gradients of a node's inputs (undefined where none flows) given the output's gradient. */
function inputGradients(n: Node, grad: Node): (Node | undefined)[] {
  const [a, b] = n.inputs as [Node, Node];
  switch (n.op) {
    case 'matmul':
      if (a.shape.length === 2) return [g.matmul(grad, g.transpose(b)), g.matmul(g.transpose(a), grad)];
      return [g.matmul(grad, g.transpose(b, [0, 2, 1])), g.matmul(g.transpose(a, [0, 2, 1]), grad)];
    case 'transpose': {
      const perm = n.attrs.perm!;
      const inverse = perm.map((_, k) => perm.indexOf(k));
      return [g.transpose(grad, inverse)];
    }
    case 'add':
      return [unbroadcast(grad, a.shape), unbroadcast(grad, b.shape)];
    case 'sub':
      return [unbroadcast(grad, a.shape), unbroadcast(g.neg(grad), b.shape)];
    case 'mul':
      return [unbroadcast(g.mul(grad, b), a.shape), unbroadcast(g.mul(grad, a), b.shape)];
    case 'div':
      return [unbroadcast(g.div(grad, b), a.shape), unbroadcast(g.neg(g.div(g.mul(grad, n), b)), b.shape)];
    case 'neg':
      return [g.neg(grad)];
    case 'relu':
      return [g.reluGrad(grad, a)];
    case 'sigmoid':
      return [g.mul(grad, g.mul(n, g.sub(g.scalar(1), n)))];
    case 'sqrt':
      return [g.div(grad, g.mul(n, g.scalar(2)))];
    case 'exp':
      return [g.mul(grad, n)];
    case 'reduceSum':
      return [g.expand(n.attrs.keepdims ? grad : g.unsqueeze(grad, n.attrs.axes!), a)];
    case 'expand':
      return [unbroadcast(grad, a.shape), undefined];
    case 'unsqueeze':
    case 'reshape':
      return [g.reshape(grad, a.shape)];
    case 'concat': {
      let offset = 0;
      return n.inputs.map((x) => {
        const width = x.shape[n.attrs.axis!] as number;
        offset += width;
        return g.slice(grad, n.attrs.axis!, offset - width, offset);
      });
    }
    case 'logSoftmax':
      return [g.sub(grad, g.mul(g.exp(n), g.reduceSum(grad, [-1], true)))];
    case 'bceWithLogits':
      return [g.mul(grad, g.sub(g.sigmoid(a), b)), undefined];
    case 'selectColumns': {
      const cols = a.shape[1] as number;
      const indices = n.attrs.indices!;
      const scatter = new Float32Array(indices.length * cols);
      indices.forEach((c, p) => (scatter[p * cols + c] = 1));
      return [g.matmul(grad, g.constant(scatter, [indices.length, cols]))];
    }
    default:
      return fail(n, 'no gradient rule');
  }
}

/**
 * Reverse-mode differentiation of a scalar loss with respect to params, as new graph nodes.
 * Tables read only through gather get sparse gradients; everything else dense.
 */
export function gradients(loss: Node, params: readonly Node[]): Gradients {
  if (loss.shape.length !== 0) fail(loss, `loss must be a scalar, got rank ${loss.shape.length}`);
  const order = topoSort([loss]);
  const wanted = new Set(params.map((p) => p.id));
  // Only nodes downstream of a wanted param need a gradient.
  const live = new Set<number>();
  for (const n of order) if (wanted.has(n.id) || n.inputs.some((i) => live.has(i.id))) live.add(n.id);

  const grads = new Map<number, Node>([[loss.id, g.scalar(1)]]);
  const result: Gradients = { dense: new Map(), sparse: new Map() };
  const accumulate = (n: Node, grad: Node) => {
    const prior = grads.get(n.id);
    grads.set(n.id, prior ? g.add(prior, grad) : grad);
  };

  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const grad = grads.get(n.id);
    if (!grad || !live.has(n.id) || n.op === 'param') continue;
    if (n.op === 'gather') {
      const table = n.inputs[0]!;
      if (table.op !== 'param') fail(n, 'only a param table can be differentiated through gather');
      if (wanted.has(table.id)) result.sparse.set(table, [...(result.sparse.get(table) ?? []), { indices: n.inputs[1]!, rows: grad }]);
      continue;
    }
    const inGrads = inputGradients(n, grad);
    n.inputs.forEach((input, i) => {
      const ig = inGrads[i];
      if (ig && live.has(input.id)) accumulate(input, ig);
    });
  }
  for (const p of params) {
    const grad = grads.get(p.id);
    if (grad) result.dense.set(p, grad);
    else if (!result.sparse.has(p)) result.dense.set(p, g.constant(new Float32Array(p.data!.length), p.shape));
  }
  return result;
}
