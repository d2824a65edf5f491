import type { FeatureSpec, Random } from '@recsys/data';
import { type Node, g, nn } from '../graph/graph.js';
import { type InputLayout, type InputNodes, embedAll, inputLayout, inputNodes, tableSizes } from './inputs.js';
import { Mlp, dlrmLinearInit, init, torchLinearInit } from './layers.js';

export interface DlrmConfig {
  embeddingDim: number;
  /** Bottom MLP widths after the continuous input; the last must equal embeddingDim. */
  bottom: number[];
  /** Top MLP hidden widths (a final width-1 layer is added). */
  top: number[];
  /**
   * How the F vectors interact: 'dot' (the DLRM reference: pairwise dots, strict lower triangle, beside
   * the bottom output), 'dcn' (DCN-v2 cross layers over the F·d concatenation) or 'dotdcn' (both).
   */
  interaction: DlrmInteraction;
  /** DCN-v2 cross layers (with 'dcn' and 'dotdcn'). */
  crossLayers: number;
}

export type DlrmInteraction = 'dot' | 'dcn' | 'dotdcn';
export const DLRM_INTERACTIONS: readonly DlrmInteraction[] = ['dot', 'dcn', 'dotdcn'];

export const DLRM_DEFAULTS: DlrmConfig = { embeddingDim: 16, bottom: [64, 16], top: [64, 32], interaction: 'dot', crossLayers: 2 };

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
    if (!DLRM_INTERACTIONS.includes(config.interaction))
      throw new Error(`dlrm: interaction must be one of ${DLRM_INTERACTIONS.join(', ')}, got ${String(config.interaction)}`);
    const flat = g.concat(vectors, 1);
    const parts: Node[] = [];
    this.interactionPairs = 0;
    if (config.interaction !== 'dcn') {
      const stacked = g.reshape(flat, ['B', f, d]);
      const dots = g.reshape(g.matmul(stacked, g.transpose(stacked, [0, 2, 1])), ['B', f * f]);
      const pairs = lowerTrianglePairs(f);
      this.interactionPairs = pairs.length;
      const z = g.selectColumns(
        dots,
        pairs.map(([i, j]) => i * f + j),
      );
      parts.push(...(bottom ? [vectors[0]!, z] : [z]));
    }
    const cross: Node[] = [];
    if (config.interaction !== 'dot') {
      if (!(Number.isInteger(config.crossLayers) && config.crossLayers >= 1))
        throw new Error(`dlrm: crossLayers must be a whole number >= 1, got ${config.crossLayers}`);
      // DCN-v2 (Wang et al. 2021): x_{l+1} = x0 ⊙ (x_l W_l + b_l) + x_l over x0 = the F vectors concatenated.
      const width = f * d;
      let xl = flat;
      for (let l = 0; l < config.crossLayers; l++) {
        const how = torchLinearInit(width, width);
        const weight = g.param(`cross.${l}.weight`, [width, width], how.weight(width * width, rng));
        const bias = g.param(`cross.${l}.bias`, [width], how.bias(width, rng));
        cross.push(weight, bias);
        xl = g.add(g.mul(flat, nn.linear(xl, weight, bias)), xl);
      }
      parts.push(xl);
    }
    const topInput = parts.length === 1 ? parts[0]! : g.concat(parts, 1);
    const top = new Mlp('top', [topInput.shape[1] as number, ...config.top, 1], rng, dlrmLinearInit, false);
    this.logit = g.reshape(top.apply(topInput), ['B']);
    this.probability = g.sigmoid(this.logit);
    this.params = [...this.tables, ...(bottom?.params ?? []), ...cross, ...top.params];
  }

  /** Mean binary cross-entropy against `labels` [B]; `inv_batch` [] is 1/B. */
  loss(): { loss: Node; labels: Node; invBatch: Node } {
    const labels = g.input('labels', ['B']);
    const invBatch = g.input('inv_batch', []);
    return { loss: g.mul(g.reduceSum(g.bceWithLogits(this.logit, labels), [0]), invBatch), labels, invBatch };
  }
}
