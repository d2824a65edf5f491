import type { Random } from '@recsys/data';
import { type Node, g, nn } from '../graph/graph.js';

export type Init = (n: number, rng: Random) => Float32Array;

export const init = {
  uniform:
    (bound: number): Init =>
    (n, rng) =>
      Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound),
  normal:
    (std: number): Init =>
    (n, rng) =>
      Float32Array.from({ length: n }, () => rng.normal() * std),
};

/** How a Linear layer's weight [in, out] and bias [out] start. */
export type LinearInit = (fanIn: number, fanOut: number) => { weight: Init; bias: Init };

/** DLRM reference: weight N(0, sqrt(2 / (in + out))), bias N(0, sqrt(1 / out)). */
export const dlrmLinearInit: LinearInit = (fanIn, fanOut) => ({
  weight: init.normal(Math.sqrt(2 / (fanIn + fanOut))),
  bias: init.normal(Math.sqrt(1 / fanOut)),
});

/** PyTorch nn.Linear's default: weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
export const torchLinearInit: LinearInit = (fanIn) => ({
  weight: init.uniform(1 / Math.sqrt(fanIn)),
  bias: init.uniform(1 / Math.sqrt(fanIn)),
});

/** A stack of Linear layers with ReLU between them (and after the last one when lastRelu). */
export class Mlp {
  readonly params: Node[] = [];
  private readonly layers: { weight: Node; bias: Node }[] = [];

  constructor(
    name: string,
    dims: readonly number[],
    rng: Random,
    linearInit: LinearInit,
    private readonly lastRelu: boolean,
  ) {
    for (let k = 0; k + 1 < dims.length; k++) {
      const [fanIn, fanOut] = [dims[k]!, dims[k + 1]!];
      const how = linearInit(fanIn, fanOut);
      const weight = g.param(`${name}.${k}.weight`, [fanIn, fanOut], how.weight(fanIn * fanOut, rng));
      const bias = g.param(`${name}.${k}.bias`, [fanOut], how.bias(fanOut, rng));
      this.layers.push({ weight, bias });
      this.params.push(weight, bias);
    }
  }

  apply(x: Node): Node {
    let h = x;
    this.layers.forEach(({ weight, bias }, k) => {
      h = nn.linear(h, weight, bias);
      if (k < this.layers.length - 1 || this.lastRelu) h = g.relu(h);
    });
    return h;
  }
}
