import type { FeatureSpec, Random } from '@recsys/data';
import { type Node, g } from '../graph/graph.js';
import { type InputLayout, type InputNodes, embedAll, inputLayout, inputNodes, tableSizes } from './inputs.js';
import { Mlp, dlrmLinearInit, init } from './layers.js';

export interface DlrmConfig {
  embeddingDim: number;
  /** Bottom MLP widths after the continuous input; the last must equal embeddingDim. */
  bottom: number[];
  /** Top MLP hidden widths (a final width-1 layer is added). */
  top: number[];
}

export const DLRM_DEFAULTS: DlrmConfig = { embeddingDim: 16, bottom: [64, 16], top: [64, 32] };

/** Strict lower triangle of an f×f matrix in row-major order: (1,0), (2,0), (2,1), … as the DLRM reference. */
export function lowerTrianglePairs(f: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let i = 0; i < f; i++) for (let j = 0; j < i; j++) pairs.push([i, j]);
  return pairs;
}

/**
 * DLRM: embeddings of every categorical feature, a bottom MLP over the continuous ones,
 * dot interaction of all F vectors (strict lower triangle), concatenated with the bottom
 * output into the top MLP; the logit's sigmoid is the click probability.
 */
export class Dlrm {
  readonly layout: InputLayout;
  readonly inputs: InputNodes;
  readonly params: Node[];
  readonly tables: Node[];
  readonly logit: Node;
  readonly probability: Node;
  readonly interactionPairs: number;

  constructor(
    spec: FeatureSpec,
    readonly config: DlrmConfig,
    rng: Random,
  ) {
    const d = config.embeddingDim;
    this.layout = inputLayout(spec);
    this.inputs = inputNodes(this.layout);
    this.tables = tableSizes(this.layout).map((n, k) => {
      const f = [...this.layout.categorical, ...this.layout.multi][k]!;
      return g.param(`emb.${f.name}`, [n, d], init.uniform(Math.sqrt(1 / n))(n * d, rng));
    });
    const vectors = embedAll(this.layout, this.inputs, this.tables);
    const dense = this.layout.continuous.length;
    let bottom: Mlp | undefined;
    if (dense > 0) {
      if (config.bottom[config.bottom.length - 1] !== d) throw new Error(`dlrm: the bottom MLP must end at the embedding dim ${d}`);
      bottom = new Mlp('bottom', [dense, ...config.bottom], rng, dlrmLinearInit, true);
      vectors.unshift(bottom.apply(this.inputs.continuous!));
    }
    const f = vectors.length;
    if (f < 2) throw new Error('dlrm: needs at least two vectors to interact');
    const stacked = g.reshape(g.concat(vectors, 1), ['B', f, d]);
    const dots = g.reshape(g.matmul(stacked, g.transpose(stacked, [0, 2, 1])), ['B', f * f]);
    const pairs = lowerTrianglePairs(f);
    this.interactionPairs = pairs.length;
    const z = g.selectColumns(
      dots,
      pairs.map(([i, j]) => i * f + j),
    );
    const topInput = bottom ? g.concat([vectors[0]!, z], 1) : z;
    const top = new Mlp('top', [topInput.shape[1] as number, ...config.top, 1], rng, dlrmLinearInit, false);
    this.logit = g.reshape(top.apply(topInput), ['B']);
    this.probability = g.sigmoid(this.logit);
    this.params = [...this.tables, ...(bottom?.params ?? []), ...top.params];
  }

  /** Mean binary cross-entropy against `labels` [B]; `inv_batch` [] is 1/B. */
  loss(): { loss: Node; labels: Node; invBatch: Node } {
    const labels = g.input('labels', ['B']);
    const invBatch = g.input('inv_batch', []);
    return { loss: g.mul(g.reduceSum(g.bceWithLogits(this.logit, labels), [0]), invBatch), labels, invBatch };
  }
}
