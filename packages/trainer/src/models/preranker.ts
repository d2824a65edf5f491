import type { Random } from '@recsys/data';
import { type Node, g } from '../graph/graph.js';
import { Mlp, torchLinearInit } from './layers.js';

export interface PrerankerConfig {
  hidden: number[];
}

export const PRERANKER_DEFAULTS: PrerankerConfig = { hidden: [64] };

/**
 * The light pre-ranking model: an MLP over the user and item tower vectors, their elementwise
 * product and a few continuous features; cheap enough to score thousands of candidates per request.
 */
export class Preranker {
  readonly userEmbedding: Node;
  readonly itemEmbedding: Node;
  readonly continuous?: Node;
  readonly params: Node[];
  readonly logit: Node;
  readonly probability: Node;

  constructor(
    embeddingDim: number,
    continuousCount: number,
    readonly config: PrerankerConfig,
    rng: Random,
  ) {
    this.userEmbedding = g.input('user_embedding', ['B', embeddingDim]);
    this.itemEmbedding = g.input('item_embedding', ['B', embeddingDim]);
    const parts = [this.userEmbedding, this.itemEmbedding, g.mul(this.userEmbedding, this.itemEmbedding)];
    if (continuousCount > 0) {
      this.continuous = g.input('continuous', ['B', continuousCount]);
      parts.push(this.continuous);
    }
    const x = g.concat(parts, 1);
    const mlp = new Mlp('preranker', [x.shape[1] as number, ...config.hidden, 1], rng, torchLinearInit, false);
    this.logit = g.reshape(mlp.apply(x), ['B']);
    this.probability = g.sigmoid(this.logit);
    this.params = mlp.params;
  }

  loss(): Node {
    const labels = g.input('labels', ['B']);
    const invBatch = g.input('inv_batch', []);
    return g.mul(g.reduceSum(g.bceWithLogits(this.logit, labels), [0]), invBatch);
  }
}
