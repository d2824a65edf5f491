/**
 * A small tensor graph: models are written once as graphs of these ops; the same graph is
 * evaluated in TypeScript (tests, parity), differentiated symbolically (autodiff.ts) and
 * emitted as ONNX (onnx.ts) for onnxruntime to train and serve.
 */

/** A dimension: a number, or a symbolic size named by a string (the batch 'B'). */
export type Dim = number | string;
export type Shape = readonly Dim[];
export type DType = 'float32' | 'int32';

export type OpKind =
  | 'input'
  | 'param'
  | 'constant'
  | 'gather'
  | 'column'
  | 'selectColumns'
  | 'matmul'
  | 'transpose'
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'neg'
  | 'relu'
  | 'reluGrad'
  | 'sigmoid'
  | 'sqrt'
  | 'exp'
  | 'reduceSum'
  | 'expand'
  | 'unsqueeze'
  | 'concat'
  | 'slice'
  | 'reshape'
  | 'logSoftmax'
  | 'bceWithLogits';

export interface Attrs {
  axes?: readonly number[];
  axis?: number;
  keepdims?: boolean;
  perm?: readonly number[];
  start?: number;
  end?: number;
  index?: number;
  indices?: readonly number[];
  shape?: Shape;
}

export interface Node {
  readonly id: number;
  readonly op: OpKind;
  readonly inputs: readonly Node[];
  readonly shape: Shape;
  readonly dtype: DType;
  readonly attrs: Attrs;
  /** Inputs, params and outputs carry the name they have in the ONNX graph. */
  readonly name?: string;
  /** Constants (and params' initial values) hold their data. */
  readonly data?: Float32Array | Int32Array;
}

let nextId = 0;

function node(op: OpKind, inputs: Node[], shape: Shape, dtype: DType = 'float32', attrs: Attrs = {}, extra: Partial<Node> = {}): Node {
  return { id: nextId++, op, inputs, shape, dtype, attrs, ...extra };
}

function fail(op: string, message: string): never {
  throw new Error(`graph: ${op}: ${message}`);
}

function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

function shapeText(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** numpy broadcasting over static and symbolic dims (a symbolic dim only matches itself or 1). */
export function broadcastShapes(op: string, a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (sameDim(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else fail(op, `cannot broadcast ${shapeText(a)} with ${shapeText(b)}`);
  }
  return out;
}

export function size(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') fail('size', `symbolic dim ${d}`);
    n *= d;
  }
  return n;
}

function normaliseAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export const g = {
  input(name: string, shape: Shape, dtype: DType = 'float32'): Node {
    return node('input', [], shape, dtype, {}, { name });
  },
  param(name: string, shape: Shape, data: Float32Array): Node {
    if (data.length !== size(shape)) fail('param', `${name}: ${data.length} values for shape ${shapeText(shape)}`);
    return node('param', [], shape, 'float32', {}, { name, data });
  },
  constant(data: Float32Array | Int32Array, shape: Shape): Node {
    if (data.length !== size(shape)) fail('constant', `${data.length} values for shape ${shapeText(shape)}`);
    return node('constant', [], shape, data instanceof Int32Array ? 'int32' : 'float32', {}, { data });
  },
  scalar(value: number): Node {
    return g.constant(Float32Array.of(value), []);
  },
  /** Rows of table [N, d] at int32 indices of any shape → [...indices.shape, d]. */
  gather(table: Node, indices: Node): Node {
    if (table.shape.length !== 2) fail('gather', `table must be 2-D, got ${shapeText(table.shape)}`);
    if (indices.dtype !== 'int32') fail('gather', 'indices must be int32');
    return node('gather', [table, indices], [...indices.shape, table.shape[1]!]);
  },
  /** Column `index` of a 2-D tensor → [rows]. */
  column(x: Node, index: number): Node {
    if (x.shape.length !== 2) fail('column', `expects 2-D, got ${shapeText(x.shape)}`);
    return node('column', [x], [x.shape[0]!], x.dtype, { index });
  },
  /** Columns of a 2-D float tensor, in the given order → [rows, indices.length]. */
  selectColumns(x: Node, indices: readonly number[]): Node {
    if (x.shape.length !== 2) fail('selectColumns', `expects 2-D, got ${shapeText(x.shape)}`);
    return node('selectColumns', [x], [x.shape[0]!, indices.length], 'float32', { indices });
  },
  /** 2-D @ 2-D, or batched 3-D @ 3-D with the same leading dim. */
  matmul(a: Node, b: Node): Node {
    const ra = a.shape.length;
    const rb = b.shape.length;
    const ka = a.shape[ra - 1]!;
    const kb = b.shape[rb - 2]!;
    if (!((ra === 2 && rb === 2) || (ra === 3 && rb === 3 && sameDim(a.shape[0]!, b.shape[0]!))))
      fail('matmul', `unsupported ranks ${shapeText(a.shape)} @ ${shapeText(b.shape)}`);
    if (!sameDim(ka, kb)) fail('matmul', `inner dims differ: ${shapeText(a.shape)} @ ${shapeText(b.shape)}`);
    return node('matmul', [a, b], [...a.shape.slice(0, -1), b.shape[rb - 1]!]);
  },
  transpose(x: Node, perm: readonly number[] = [1, 0]): Node {
    if (perm.length !== x.shape.length) fail('transpose', `perm ${perm.join(',')} for rank ${x.shape.length}`);
    return node(
      'transpose',
      [x],
      perm.map((p) => x.shape[p]!),
      x.dtype,
      { perm },
    );
  },
  add: (a: Node, b: Node) => node('add', [a, b], broadcastShapes('add', a.shape, b.shape)),
  sub: (a: Node, b: Node) => node('sub', [a, b], broadcastShapes('sub', a.shape, b.shape)),
  mul: (a: Node, b: Node) => node('mul', [a, b], broadcastShapes('mul', a.shape, b.shape)),
  div: (a: Node, b: Node) => node('div', [a, b], broadcastShapes('div', a.shape, b.shape)),
  neg: (x: Node) => node('neg', [x], x.shape),
  relu: (x: Node) => node('relu', [x], x.shape),
  /** g where x > 0, else 0 (the derivative of relu; never differentiated itself). */
  reluGrad: (grad: Node, x: Node) => node('reluGrad', [grad, x], x.shape),
  sigmoid: (x: Node) => node('sigmoid', [x], x.shape),
  sqrt: (x: Node) => node('sqrt', [x], x.shape),
  exp: (x: Node) => node('exp', [x], x.shape),
  reduceSum(x: Node, axes: readonly number[], keepdims = false): Node {
    const norm = axes.map((a) => normaliseAxis(a, x.shape.length));
    const shape = keepdims ? x.shape.map((d, k) => (norm.includes(k) ? 1 : d)) : x.shape.filter((_, k) => !norm.includes(k));
    return node('reduceSum', [x], shape, 'float32', { axes: norm, keepdims });
  },
  /** x broadcast to the shape of `like`. */
  expand(x: Node, like: Node): Node {
    broadcastShapes('expand', like.shape, x.shape);
    return node('expand', [x, like], like.shape);
  },
  unsqueeze(x: Node, axes: readonly number[]): Node {
    const shape: Dim[] = [...x.shape];
    for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return node('unsqueeze', [x], shape, x.dtype, { axes });
  },
  concat(xs: Node[], axis: number): Node {
    const rank = xs[0]!.shape.length;
    const ax = normaliseAxis(axis, rank);
    let total = 0;
    for (const x of xs) {
      if (x.shape.length !== rank) fail('concat', 'ranks differ');
      x.shape.forEach((d, k) => {
        if (k !== ax && !sameDim(d, xs[0]!.shape[k]!)) fail('concat', `shapes differ off axis: ${shapeText(x.shape)}`);
      });
      const d = x.shape[ax]!;
      if (typeof d !== 'number') fail('concat', 'cannot concat along a symbolic dim');
      total += d;
    }
    const shape = [...xs[0]!.shape];
    shape[ax] = total;
    return node('concat', xs, shape, 'float32', { axis: ax });
  },
  /** x[..., start:end, ...] along one static axis. */
  slice(x: Node, axis: number, start: number, end: number): Node {
    const ax = normaliseAxis(axis, x.shape.length);
    const shape = [...x.shape];
    shape[ax] = end - start;
    return node('slice', [x], shape, x.dtype, { axis: ax, start, end });
  },
  /** Reshape keeping at most one symbolic dim (it becomes -1 in ONNX). */
  reshape(x: Node, shape: Shape): Node {
    const symbolic = shape.filter((d) => typeof d !== 'number');
    if (symbolic.length > 1) fail('reshape', 'at most one symbolic dim');
    const known = (s: Shape) => s.reduce<number>((n, d) => (typeof d === 'number' ? n * d : n), 1);
    const symbolicIn = x.shape.filter((d) => typeof d !== 'number');
    if (symbolicIn.length !== symbolic.length || symbolic[0] !== symbolicIn[0] || known(shape) !== known(x.shape))
      fail('reshape', `${shapeText(x.shape)} → ${shapeText(shape)}`);
    return node('reshape', [x], shape, x.dtype, { shape });
  },
  logSoftmax: (x: Node) => node('logSoftmax', [x], x.shape, 'float32', { axis: x.shape.length - 1 }),
  /** Elementwise binary cross-entropy of logits z against labels y (numerically stable). */
  bceWithLogits(z: Node, y: Node): Node {
    if (z.shape.length !== y.shape.length || !z.shape.every((d, k) => sameDim(d, y.shape[k]!)))
      fail('bceWithLogits', `${shapeText(z.shape)} vs ${shapeText(y.shape)}`);
    return node('bceWithLogits', [z, y], z.shape);
  },
};

/** Every node reachable from the outputs, inputs before users. */
export function topoSort(outputs: readonly Node[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<number>();
  const stack: { n: Node; done: boolean }[] = outputs.map((n) => ({ n, done: false })).reverse();
  while (stack.length) {
    const top = stack.pop()!;
    if (top.done) {
      order.push(top.n);
      continue;
    }
    if (seen.has(top.n.id)) continue;
    seen.add(top.n.id);
    stack.push({ n: top.n, done: true });
    for (let k = top.n.inputs.length - 1; k >= 0; k--) if (!seen.has(top.n.inputs[k]!.id)) stack.push({ n: top.n.inputs[k]!, done: false });
  }
  return order;
}

/** Shorthands used by the models. */
export const nn = {
  /** x @ W + b. */
  linear: (x: Node, w: Node, b: Node) => g.add(g.matmul(x, w), b),
  /** x / sqrt(sum(x²) + eps) along the last axis. */
  l2Normalize(x: Node, eps = 1e-12): Node {
    const norm = g.sqrt(g.add(g.reduceSum(g.mul(x, x), [-1], true), g.scalar(eps)));
    return g.div(x, norm);
  },
};
