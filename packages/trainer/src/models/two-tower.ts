import type { FeatureSpec, Random } from '@recsys/data';
import { type Node, g, nn } from '../graph/graph.js';
import { type InputLayout, type InputNodes, embedAll, inputLayout, inputNodes, tableSizes } from './inputs.js';
import { Mlp, init, torchLinearInit } from './layers.js';

export interface TwoTowerConfig {
  /** Width of each feature's embedding. */
  embeddingDim: number;
  hidden: number[];
  /** Output (vector) dimension. */
  outputDim: number;
  temperature: number;
}

export const TWO_TOWER_DEFAULTS: TwoTowerConfig = { embeddingDim: 16, hidden: [64], outputDim: 32, temperature: 0.05 };

/** One tower: embeddings (and continuous features) concatenated into an MLP, L2-normalised. */
export class Tower {
  readonly layout: InputLayout;
  readonly inputs: InputNodes;
  readonly params: Node[];
  readonly output: Node;

  constructor(name: string, spec: FeatureSpec, config: TwoTowerConfig, rng: Random, prefix: string, batch = 'B') {
    const d = config.embeddingDim;
    this.layout = inputLayout(spec);
    this.inputs = inputNodes(this.layout, prefix, batch);
    const features = [...this.layout.categorical, ...this.layout.multi];
    // nn.Embedding's default initialisation, N(0, 1), as the reference towers.
    const tables = tableSizes(this.layout).map((n, k) => g.param(`${name}.emb.${features[k]!.name}`, [n, d], init.normal(1)(n * d, rng)));
    const parts = embedAll(this.layout, this.inputs, tables);
    if (this.inputs.continuous) parts.push(this.inputs.continuous);
    const x = parts.length === 1 ? parts[0]! : g.concat(parts, 1);
    const mlp = new Mlp(`${name}.mlp`, [x.shape[1] as number, ...config.hidden, config.outputDim], rng, torchLinearInit, false);
    this.output = nn.l2Normalize(mlp.apply(x));
    this.params = [...tables, ...mlp.params];
  }

  /** The features this tower reads, in input order. */
  get spec(): FeatureSpec {
    return { features: [...this.layout.categorical, ...this.layout.multi, ...this.layout.continuous] };
  }
}

/**
 * Two-tower retrieval: user and item towers; softmax over user·item / temperature minus log q(item)
 * (sampling-bias correction, fed as `logq`), accidental hits masked (`mask`). The item side's rows
 * (symbolic dim N) are the batch's own items, then any sampled negatives (mixed negative sampling,
 * Yang et al. 2020): the feeds decide, the graph is the same.
 */
export class TwoTower {
  readonly user: Tower;
  readonly item: Tower;

  constructor(
    userSpec: FeatureSpec,
    itemSpec: FeatureSpec,
    readonly config: TwoTowerConfig,
    rng: Random,
  ) {
    this.user = new Tower('user', userSpec, config, rng, 'user_');
    this.item = new Tower('item', itemSpec, config, rng, 'item_', 'N');
  }

  get params(): Node[] {
    return [...this.user.params, ...this.item.params];
  }

  /**
   * Mean softmax cross-entropy over the N item rows. Feeds: `logq` [N] (log q of each item row: the
   * streaming estimate for the batch's items, log(sampled / corpus) for uniform negatives, zeros
   * without correction), `mask` [B, N] (-1e9 where an item row is the example's own positive but not
   * its target column, else 0), `targets` [B, N] (1 at each example's own column), `inv_batch` [] (1/B).
   */
  loss(): Node {
    const logq = g.input('logq', ['N']);
    const mask = g.input('mask', ['B', 'N']);
    const targets = g.input('targets', ['B', 'N']);
    const invBatch = g.input('inv_batch', []);
    const scores = g.div(g.matmul(this.user.output, g.transpose(this.item.output)), g.scalar(this.config.temperature));
    const logits = g.add(g.sub(scores, logq), mask);
    return g.mul(g.neg(g.reduceSum(g.mul(targets, g.logSoftmax(logits)), [0, 1])), invBatch);
  }
}
