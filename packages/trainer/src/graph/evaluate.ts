import { type Node, type Shape, topoSort } from './graph.js';

/** A dense row-major tensor. */
import type { Tensor } from '@recsys/model-format';

export type { Tensor } from '@recsys/model-format';

export function tensor(data: Float32Array | Int32Array, shape: number[]): Tensor {
  return { data, shape };
}

function fail(node: Node, message: string): never {
  throw new Error(`evaluate: ${node.op}${node.name ? ` ${node.name}` : ''}: ${message}`);
}

function count(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k]!;
  }
  return s;
}

/** Strides of `shape` seen through a broadcast to `out` (0 along broadcast axes). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const own = strides(shape);
  const offset = out.length - shape.length;
  return out.map((d, k) => {
    const s = shape[k - offset];
    return s === undefined || (s === 1 && d !== 1) ? 0 : own[k - offset]!;
  });
}

function broadcastOut(node: Node, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(node, `cannot broadcast [${a.join(',')}] with [${b.join(',')}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Calls f(outIndex, aIndex, bIndex) for every element of the broadcast of a and b. */
function forEachBroadcast(out: number[], sa: number[], sb: number[], f: (o: number, i: number, j: number) => void): void {
  const rank = out.length;
  const idx = new Array<number>(rank).fill(0);
  const total = count(out);
  let i = 0;
  let j = 0;
  for (let o = 0; o < total; o++) {
    f(o, i, j);
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]!++;
      i += sa[k]!;
      j += sb[k]!;
      if (idx[k]! < out[k]!) break;
      i -= sa[k]! * out[k]!;
      j -= sb[k]! * out[k]!;
      idx[k] = 0;
    }
  }
}

function binary(node: Node, a: Tensor, b: Tensor, f: (x: number, y: number) => number): Tensor {
  const out = broadcastOut(node, a.shape, b.shape);
  const data = new Float32Array(count(out));
  const ad = a.data;
  const bd = b.data;
  if (a.shape.length === b.shape.length && a.shape.every((d, k) => d === b.shape[k])) {
    for (let k = 0; k < data.length; k++) data[k] = f(ad[k]!, bd[k]!);
  } else {
    forEachBroadcast(out, broadcastStrides(a.shape, out), broadcastStrides(b.shape, out), (o, i, j) => {
      data[o] = f(ad[i]!, bd[j]!);
    });
  }
  return { shape: out, data };
}

function unary(x: Tensor, f: (v: number) => number): Tensor {
  const data = new Float32Array(x.data.length);
  for (let k = 0; k < data.length; k++) data[k] = f(x.data[k]!);
  return { shape: x.shape, data };
}

function matmul2(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, ao = 0, bo = 0, oo = 0): void {
  for (let i = 0; i < m; i++) {
    const orow = oo + i * n;
    for (let p = 0; p < k; p++) {
      const av = a[ao + i * k + p]!;
      if (av === 0) continue;
      const brow = bo + p * n;
      for (let j = 0; j < n; j++) out[orow + j]! += av * b[brow + j]!;
    }
  }
}

function matmul(node: Node, a: Tensor, b: Tensor): Tensor {
  const ad = a.data as Float32Array;
  const bd = b.data as Float32Array;
  if (a.shape.length === 2) {
    const [m, k] = a.shape as [number, number];
    const [k2, n] = b.shape as [number, number];
    if (k !== k2) fail(node, `inner dims ${k} vs ${k2}`);
    const out = new Float32Array(m * n);
    matmul2(ad, bd, out, m, k, n);
    return { shape: [m, n], data: out };
  }
  const [batch, m, k] = a.shape as [number, number, number];
  const [batch2, k2, n] = b.shape as [number, number, number];
  if (k !== k2 || batch !== batch2) fail(node, `shapes [${a.shape.join(',')}] @ [${b.shape.join(',')}]`);
  const out = new Float32Array(batch * m * n);
  for (let t = 0; t < batch; t++) matmul2(ad, bd, out, m, k, n, t * m * k, t * k * n, t * m * n);
  return { shape: [batch, m, n], data: out };
}

function transpose(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const inStrides = strides(x.shape);
  const permuted = perm.map((p) => inStrides[p]!);
  const data = new (x.data instanceof Int32Array ? Int32Array : Float32Array)(x.data.length);
  const zero = shape.map(() => 0);
  forEachBroadcast(shape, permuted, zero, (o, i) => {
    data[o] = x.data[i]!;
  });
  return { shape, data };
}

function reduceSum(x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const keptShape = x.shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const out = new Float32Array(count(keptShape));
  const outStrides = broadcastStrides(keptShape, x.shape);
  const zero = x.shape.map(() => 0);
  forEachBroadcast(x.shape, outStrides, zero, (i, o) => {
    out[o]! += x.data[i]!;
  });
  return { shape: keepdims ? keptShape : x.shape.filter((_, k) => !axes.includes(k)), data: out };
}

function expand(x: Tensor, shape: number[]): Tensor {
  const data = new Float32Array(count(shape));
  const zero = shape.map(() => 0);
  forEachBroadcast(shape, broadcastStrides(x.shape, shape), zero, (o, i) => {
    data[o] = x.data[i]!;
  });
  return { shape, data };
}

/** [outer, axisLen, inner] view of a shape around one axis. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [count(shape.slice(0, axis)), shape[axis]!, count(shape.slice(axis + 1))];
}

function concat(xs: Tensor[], axis: number): Tensor {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((n, x) => n + x.shape[axis]!, 0);
  const [outer, total, inner] = around(shape, axis);
  const data = new Float32Array(count(shape));
  let offset = 0;
  for (const x of xs) {
    const len = x.shape[axis]! * inner;
    for (let o = 0; o < outer; o++) data.set(x.data.subarray(o * len, (o + 1) * len), o * total * inner + offset);
    offset += len;
  }
  return { shape, data };
}

function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const [outer, len, inner] = around(x.shape, axis);
  const shape = [...x.shape];
  shape[axis] = end - start;
  const data = new (x.data instanceof Int32Array ? Int32Array : Float32Array)(count(shape));
  const width = (end - start) * inner;
  for (let o = 0; o < outer; o++) data.set(x.data.subarray(o * len * inner + start * inner, o * len * inner + end * inner), o * width);
  return { shape, data };
}

function gather(node: Node, table: Tensor, indices: Tensor): Tensor {
  const [rows, d] = table.shape as [number, number];
  const data = new Float32Array(indices.data.length * d);
  for (let k = 0; k < indices.data.length; k++) {
    const r = indices.data[k]!;
    if (r < 0 || r >= rows) fail(node, `index ${r} out of range [0, ${rows})`);
    data.set(table.data.subarray(r * d, (r + 1) * d), k * d);
  }
  return { shape: [...indices.shape, d], data };
}

function selectColumns(x: Tensor, indices: readonly number[]): Tensor {
  const [rows, cols] = x.shape as [number, number];
  const data = new Float32Array(rows * indices.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < indices.length; c++) data[r * indices.length + c] = x.data[r * cols + indices[c]!]!;
  return { shape: [rows, indices.length], data };
}

function column(x: Tensor, index: number): Tensor {
  const [rows, cols] = x.shape as [number, number];
  const data = new (x.data instanceof Int32Array ? Int32Array : Float32Array)(rows);
  for (let r = 0; r < rows; r++) data[r] = x.data[r * cols + index]!;
  return { shape: [rows], data };
}

function logSoftmax(x: Tensor): Tensor {
  const n = x.shape[x.shape.length - 1]!;
  const data = new Float32Array(x.data.length);
  for (let o = 0; o < x.data.length; o += n) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x.data[o + j]!);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += Math.exp(x.data[o + j]! - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < n; j++) data[o + j] = x.data[o + j]! - lse;
  }
  return { shape: x.shape, data };
}

/** Binds symbolic dims to sizes while checking a fed tensor's shape. */
function bindShape(node: Node, declared: Shape, actual: number[], dims: Map<string, number>): void {
  if (declared.length !== actual.length) fail(node, `rank ${actual.length}, expected ${declared.length}`);
  declared.forEach((d, k) => {
    const a = actual[k]!;
    if (typeof d === 'number') {
      if (d !== a) fail(node, `dim ${k} is ${a}, expected ${d}`);
    } else if (dims.has(d) && dims.get(d) !== a) fail(node, `dim ${k} (${d}) is ${a}, but ${d} = ${dims.get(d)} elsewhere`);
    else dims.set(d, a);
  });
}

/**
 * Evaluates the graph in plain TypeScript. `feeds` holds every input by name, and may override
 * params by name (otherwise their own data is used).
 */
export function evaluate(outputs: readonly Node[], feeds: Record<string, Tensor>): Tensor[] {
  const values = new Map<number, Tensor>();
  const dims = new Map<string, number>();
  for (const n of topoSort(outputs)) {
    const v = (k: number) => values.get(n.inputs[k]!.id)!;
    let out: Tensor;
    switch (n.op) {
      case 'input': {
        const fed = feeds[n.name!];
        if (!fed) fail(n, 'not fed');
        if (fed.data instanceof Int32Array !== (n.dtype === 'int32')) fail(n, `expected ${n.dtype}`);
        bindShape(n, n.shape, fed.shape, dims);
        out = fed;
        break;
      }
      case 'param': {
        const fed = feeds[n.name!];
        out = fed ?? { shape: n.shape as number[], data: n.data! };
        bindShape(n, n.shape, out.shape, dims);
        break;
      }
      case 'constant':
        out = { shape: n.shape as number[], data: n.data! };
        break;
      case 'gather':
        out = gather(n, v(0), v(1));
        break;
      case 'column':
        out = column(v(0), n.attrs.index!);
        break;
      case 'selectColumns':
        out = selectColumns(v(0), n.attrs.indices!);
        break;
      case 'matmul':
        out = matmul(n, v(0), v(1));
        break;
      case 'transpose':
        out = transpose(v(0), n.attrs.perm!);
        break;
      case 'add':
        out = binary(n, v(0), v(1), (a, b) => a + b);
        break;
      case 'sub':
        out = binary(n, v(0), v(1), (a, b) => a - b);
        break;
      case 'mul':
        out = binary(n, v(0), v(1), (a, b) => a * b);
        break;
      case 'div':
        out = binary(n, v(0), v(1), (a, b) => a / b);
        break;
      case 'neg':
        out = unary(v(0), (a) => -a);
        break;
      case 'relu':
        out = unary(v(0), (a) => (a > 0 ? a : 0));
        break;
      case 'reluGrad':
        out = binary(n, v(0), v(1), (grad, x) => (x > 0 ? grad : 0));
        break;
      case 'sigmoid':
        out = unary(v(0), (a) => 1 / (1 + Math.exp(-a)));
        break;
      case 'sqrt':
        out = unary(v(0), Math.sqrt);
        break;
      case 'exp':
        out = unary(v(0), Math.exp);
        break;
      case 'reduceSum':
        out = reduceSum(v(0), n.attrs.axes!, n.attrs.keepdims!);
        break;
      case 'expand':
        out = expand(v(0), v(1).shape);
        break;
      case 'unsqueeze': {
        const shape = [...v(0).shape];
        for (const a of [...n.attrs.axes!].sort((p, q) => p - q)) shape.splice(a, 0, 1);
        out = { shape, data: v(0).data };
        break;
      }
      case 'concat':
        out = concat(
          n.inputs.map((i) => values.get(i.id)!),
          n.attrs.axis!,
        );
        break;
      case 'slice':
        out = slice(v(0), n.attrs.axis!, n.attrs.start!, n.attrs.end!);
        break;
      case 'reshape': {
        const x = v(0);
        const known = n.attrs.shape!.reduce<number>((p, d) => (typeof d === 'number' ? p * d : p), 1);
        const shape = n.attrs.shape!.map((d) => (typeof d === 'number' ? d : x.data.length / known));
        out = { shape, data: x.data };
        break;
      }
      case 'logSoftmax':
        out = logSoftmax(v(0));
        break;
      case 'bceWithLogits':
        out = binary(n, v(0), v(1), (z, y) => Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z))));
        break;
    }
    values.set(n.id, out);
  }
  return outputs.map((o) => values.get(o.id)!);
}
