import { type FeatureSpec } from '@recsys/data';
import { type InputLayout } from '@recsys/model-format';
import { assembleFeeds, concatFeeds, FeedAssembler, servingLayout, zeroFeeds } from './feeds.js';
import { type FeatureRow, historySlots } from './feature-rows.js';
import type { ModelVersion } from '@recsys/model-format';
import { ModelLoadError } from '@recsys/model-format';
import { ModelSession, type ModelSessionOptions } from './onnx-session.js';

/** The user tower's input prefix in the exported graph. */
const PREFIX = 'user_';

/** The two-tower's user tower served by onnxruntime: request rows in, L2-normalised embeddings out. */
export class UserTower {
  private constructor(
    private readonly session: ModelSession,
    readonly layout: InputLayout,
    readonly version: string,
    readonly dim: number,
    /** The history length the model reads (the most slots of its recent items and user history inputs). */
    readonly historyLength: number,
  ) {}

  static async load(model: ModelVersion, options: Omit<ModelSessionOptions, 'label'>): Promise<UserTower> {
    const graph = model.manifest.graphs.user_tower;
    const bytes = model.graphs.user_tower;
    const spec: FeatureSpec | undefined = model.manifest.featureSpecs.user;
    if (!graph || !bytes || !spec)
      throw new ModelLoadError(`${model.dir}: a two-tower version needs a user_tower graph and a user feature spec`);
    const dim = Number(graph.outputs[0]?.shape[1]);
    if (!(dim > 0)) throw new ModelLoadError(`${model.dir}: the user tower's output has no fixed dimension`);
    const session = await ModelSession.create(bytes, graph.inputs, { ...options, label: `user tower v${model.version}` });
    const tower = new UserTower(session, servingLayout(spec), model.version, dim, historySlots(spec));
    // The first run allocates, and compiling the layout indexes its vocabularies (a million recent-item
    // ids in a large catalogue): both before traffic arrives.
    await session.run(zeroFeeds(graph.inputs, 1));
    FeedAssembler.of(tower.layout, PREFIX);
    return tower;
  }

  get provider(): string {
    return this.session.provider;
  }

  /** Embeddings of several requests in one run: row k of the result (dim floats) is request k. */
  async embed(requests: readonly { user: FeatureRow; context: FeatureRow }[]): Promise<Float32Array> {
    if (requests.length === 0) return new Float32Array(0);
    const { feeds } = concatFeeds(requests.map((r) => assembleFeeds(this.layout, r, PREFIX)));
    const out = await this.session.run(feeds);
    const embedding = out[this.session.outputNames[0]!];
    if (!embedding || embedding.length !== requests.length * this.dim) {
      throw new Error(`user tower v${this.version}: expected ${requests.length} × ${this.dim} outputs`);
    }
    return embedding;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
