import { IdTable, type IdRanges, idOf, touchRows } from '@recsys/data';
import {
  CandidateItems,
  EncodedItemReader,
  type EncodedItemReaderOptions,
  type ExecutionProvider,
  FeedAssembler,
  type ItemBatch,
  type ItemScanner,
  type ItemTableObserver,
  type ItemTableSettings,
  LINK_UNKNOWN,
  LiveItemTable,
  ModelLoadError,
  ModelSession,
  type ModelVersion,
  type SessionLogger,
  type SessionThread,
  UserTower,
  loadModelVersion,
  readItemVectors,
  type SharedRows,
  warmUpSession,
} from '@recsys/serving';
import { type Tensor, describeInputs, prerankerLayout } from '@recsys/model-format';

export interface PrerankerModelOptions {
  /** Where the two-tower version the pre-ranker depends on is read from. */
  modelsDir: string;
  providers: readonly ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  /** Where the pre-ranker's and the user tower's sessions run (ModelSession's `thread`). */
  thread: SessionThread;
  /** This version's own cache of encoded items (those its table lacks): a new version starts with an empty one. */
  itemCache: EncodedItemReaderOptions;
  /** This version's own table of every stored item, read through `scanner` as it loads. */
  itemTable: ItemTableSettings & { scanner: ItemScanner; observer?: ItemTableObserver };
  logger?: SessionLogger;
}

/**
 * One served pre-ranker version with the two-tower version it was trained on: the pre-ranker's session,
 * that two-tower's user tower (for requests that bring no usable user embedding) and its item vectors.
 * They load, and are replaced, together.
 */
export class PrerankerModel {
  private constructor(
    private readonly session: ModelSession,
    readonly version: string,
    readonly userTower: UserTower,
    /** The two-tower's item ids, row by row of its vectors. */
    private readonly itemRows: IdTable,
    private readonly itemVectors: Float32Array,
    readonly dim: number,
    /** Encodes the spec's continuous features (undefined when the pre-ranker reads none). */
    private readonly continuous: FeedAssembler | undefined,
    /** The candidates' encoded continuous item features (undefined when the pre-ranker reads none). */
    readonly items: CandidateItems | undefined,
    /** Whether the continuous features read the user's stored features (and so need the feature service). */
    readonly readsUser: boolean,
    private readonly outputName: string,
  ) {}

  static async load(model: ModelVersion, options: PrerankerModelOptions): Promise<PrerankerModel> {
    const graph = model.manifest.graphs.model;
    const bytes = model.graphs.model;
    const spec = model.manifest.featureSpecs.model;
    const dependency = model.manifest.dependsOn?.['two-tower'];
    if (!graph || !bytes || !spec) throw new ModelLoadError(`${model.dir}: a pre-ranker version needs a "model" graph and feature spec`);
    if (!dependency) throw new ModelLoadError(`${model.dir}: the manifest names no two-tower version (dependsOn)`);
    const output = graph.outputs[0];
    if (!output || output.shape.slice(1).some((d) => d !== 1)) {
      throw new ModelLoadError(`${model.dir}: the pre-ranker's first output must be one probability per row, got [${output?.shape ?? ''}]`);
    }
    const continuous = prerankerLayout(spec);
    const expected = ['user_embedding', 'item_embedding', ...(continuous ? describeInputs(continuous).map((i) => i.name) : [])];
    const declared = graph.inputs.map((i) => i.name);
    if (expected.join() !== declared.join()) {
      throw new ModelLoadError(
        `${model.dir}: the pre-ranker's inputs should be [${expected.join(', ')}], the graph declares [${declared.join(', ')}]`,
      );
    }
    const twoTower = await loadModelVersion(options.modelsDir, 'two-tower', dependency);
    const vectors = await readItemVectors(twoTower);
    for (const input of graph.inputs.slice(0, 2)) {
      if (input.shape[1] !== vectors.dim) {
        throw new ModelLoadError(
          `${model.dir}: ${input.name} has ${input.shape[1]} dimensions, two-tower v${dependency} embeds in ${vectors.dim}`,
        );
      }
    }
    const sessionOptions = {
      providers: options.providers,
      intraOpThreads: options.intraOpThreads,
      cudaDeviceId: options.cudaDeviceId,
      thread: options.thread,
      logger: options.logger,
    };
    const userTower = await UserTower.load(twoTower, sessionOptions);
    if (userTower.dim !== vectors.dim) {
      await userTower.release();
      throw new ModelLoadError(
        `two-tower v${dependency}: the user tower embeds in ${userTower.dim} dimensions, the item vectors in ${vectors.dim}`,
      );
    }
    let session: ModelSession | undefined;
    let table: LiveItemTable | undefined;
    const assembler = continuous && FeedAssembler.of(continuous);
    // The ids as one buffer and a hash of rows, not a million strings in a Map. The item table records each item's row
    // here as it is read, so a candidate the table holds needs one id lookup, not two.
    const rows = IdTable.from(vectors.ids);
    try {
      session = await ModelSession.create(bytes, graph.inputs, { ...sessionOptions, label: `preranker v${model.version}` });
      await warmUpSession(session, graph);
      const { scanner, maxItems, refreshMs } = options.itemTable;
      if (assembler?.readsItems && maxItems > 0)
        table = await LiveItemTable.start(scanner, assembler, {
          maxItems,
          refreshMs,
          label: `preranker v${model.version}`,
          logger: options.logger,
          link: rows,
        });
    } catch (error) {
      await session?.release();
      await userTower.release();
      throw error;
    }
    const items = assembler?.readsItems
      ? new CandidateItems(assembler, new EncodedItemReader(assembler, options.itemCache), table, options.itemTable.observer)
      : undefined;
    const readsUser = continuous?.continuous.some((f) => f.source === 'user') ?? false;
    return new PrerankerModel(
      session,
      model.version,
      userTower,
      rows,
      vectors.vectors,
      vectors.dim,
      assembler,
      items,
      readsUser,
      output.name,
    );
  }

  get twoTowerVersion(): string {
    return this.userTower.version;
  }

  get provider(): ExecutionProvider {
    return this.session.provider;
  }

  /**
   * Scores of every candidate in one run: the user embedding repeated, each item's two-tower vector (a
   * zero vector for an item the two-tower does not know; its ids are returned) and the continuous features.
   * `linked`: the candidates' two-tower rows as the item table read gave them (CandidateItemsRead.linked); the
   * candidates it does not know are looked up here, and all of them without it.
   */
  async score(
    userEmbedding: Float32Array,
    itemIds: readonly string[] | IdRanges,
    shared: SharedRows,
    encodedItems: ItemBatch | undefined,
    linked?: Int32Array,
  ): Promise<{ scores: Float32Array; unknown: string[] }> {
    const n = itemIds.length;
    const dim = this.dim;
    const user = new Float32Array(n * dim);
    for (let k = 0; k < n; k++) user.set(userEmbedding, k * dim);
    const items = new Float32Array(n * dim);
    const vectors = this.itemVectors;
    const unknown: string[] = [];
    const rows = linked === undefined ? this.itemRows.rowsOf(itemIds) : this.linkedRows(itemIds, linked);
    // Every candidate's vector read ahead (the reads overlap), then the copies from the cache.
    touchRows(vectors, rows, dim, n);
    for (let k = 0; k < n; k++) {
      const row = rows[k]!;
      if (row < 0) {
        unknown.push(idOf(itemIds, k));
        continue;
      }
      // A copy loop: a subarray view per candidate would allocate a thousand objects per request.
      const from = row * dim;
      const to = k * dim;
      for (let d = 0; d < dim; d++) items[to + d] = vectors[from + d]!;
    }
    const feeds: Record<string, Tensor> = {
      user_embedding: { data: user, shape: [n, dim] },
      item_embedding: { data: items, shape: [n, dim] },
    };
    if (this.continuous) {
      const { continuous } = this.continuous.assemble(shared, encodedItems);
      // Features of the user or context only come back as one row: every candidate shares it.
      feeds.continuous = continuous!.shape[0] === n ? continuous! : repeatRow(continuous!, n);
    }
    // Every feed was made for this run (the item batch's columns are copied into them): given to the session's thread.
    const out = await this.session.run(feeds, { give: true });
    return { scores: out[this.outputName]!, unknown };
  }

  /** The two-tower rows of the candidates: the item table's links, and a lookup for those it does not hold. */
  private linkedRows(itemIds: readonly string[] | IdRanges, linked: Int32Array): Int32Array {
    for (let k = 0; k < linked.length; k++) if (linked[k] === LINK_UNKNOWN) linked[k] = this.itemRows.rowOf(idOf(itemIds, k));
    return linked;
  }

  async release(): Promise<void> {
    this.items?.close();
    await this.session.release();
    await this.userTower.release();
  }
}

function repeatRow(t: Tensor, n: number): Tensor {
  const width = t.shape[1]!;
  const data = new Float32Array(n * width);
  for (let k = 0; k < n; k++) data.set(t.data.subarray(0, width), k * width);
  return { data, shape: [n, width] };
}
