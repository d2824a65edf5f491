import {
  CandidateItems,
  EncodedItemReader,
  type EncodedItemReaderOptions,
  type ExecutionProvider,
  FeedAssembler,
  historySlots,
  type ItemScanner,
  type ItemTableObserver,
  type ItemTableSettings,
  LiveItemTable,
  ModelLoadError,
  ModelSession,
  type ModelVersion,
  type SessionLogger,
  type SessionThread,
  servingLayout,
  warmUpSession,
  zeroFeeds,
} from '@recsys/serving';
import { type InputLayout, describeInputs } from '@recsys/model-format';
import { type BatcherOptions, InferenceBatcher } from './inference-batcher.js';

export interface DlrmModelOptions {
  providers: readonly ExecutionProvider[];
  intraOpThreads: number;
  cudaDeviceId: number;
  /** Where the session runs (ModelSession's `thread`). */
  thread: SessionThread;
  batcher: BatcherOptions;
  /** This version's own cache of encoded items (those its table lacks): a new version starts with an empty one. */
  itemCache: EncodedItemReaderOptions;
  /** This version's own table of every stored item, read through `scanner` as it loads. */
  itemTable: ItemTableSettings & { scanner: ItemScanner; observer?: ItemTableObserver };
  logger?: SessionLogger;
}

/**
 * One served DLRM version: its onnxruntime session, the feature layout its inputs are assembled by, its
 * table of every stored item and cache of the others (encoded), and the queue that batches concurrent requests
 * into its runs. Each version has its own queue, so a run never mixes two versions, and its own table and cache,
 * so an item is never fed as another version encoded it.
 */
export class DlrmModel {
  private constructor(
    private readonly session: ModelSession,
    readonly version: string,
    readonly layout: InputLayout,
    readonly assembler: FeedAssembler,
    /** History slots the model reads (recent items, user history; 0 when it reads none). */
    readonly historyLength: number,
    readonly items: CandidateItems,
    readonly batcher: InferenceBatcher,
  ) {}

  static async load(model: ModelVersion, options: DlrmModelOptions): Promise<DlrmModel> {
    const graph = model.manifest.graphs.model;
    const bytes = model.graphs.model;
    const spec = model.manifest.featureSpecs.model;
    if (!graph || !bytes || !spec) throw new ModelLoadError(`${model.dir}: a DLRM version needs a "model" graph and feature spec`);
    const output = graph.outputs[0];
    if (!output || output.shape.slice(1).some((d) => d !== 1)) {
      throw new ModelLoadError(`${model.dir}: the DLRM's first output must be one probability per row, got [${output?.shape ?? ''}]`);
    }
    const layout = servingLayout(spec);
    const expected = describeInputs(layout).map((i) => i.name);
    const declared = graph.inputs.map((i) => i.name);
    if (expected.join() !== declared.join()) {
      throw new ModelLoadError(
        `${model.dir}: the feature spec makes inputs [${expected.join(', ')}], the graph declares [${declared.join(', ')}]`,
      );
    }
    const session = await ModelSession.create(bytes, graph.inputs, {
      label: `dlrm v${model.version}`,
      providers: options.providers,
      intraOpThreads: options.intraOpThreads,
      cudaDeviceId: options.cudaDeviceId,
      thread: options.thread,
      logger: options.logger,
    });
    let table: LiveItemTable | undefined;
    try {
      await warmUpSession(session, graph);
      // The batcher's feeds are a request's own (assembled for it) or made for the batch, and nothing reads them after
      // the run: given to the session's thread rather than copied.
      const run = async (feeds: Parameters<ModelSession['run']>[0]) => (await session.run(feeds, { give: true }))[output.name]!;
      const batcher = new InferenceBatcher(run, options.batcher);
      // A full batch on zeros: allocates the largest buffers now and seeds the throughput estimate.
      const rows = options.batcher.maxBatchSize;
      const started = performance.now();
      await run(zeroFeeds(graph.inputs, rows));
      batcher.seedThroughput(rows, performance.now() - started);
      const assembler = FeedAssembler.of(layout);
      const { scanner, observer, ...tableSettings } = options.itemTable;
      if (tableSettings.maxItems > 0)
        table = await LiveItemTable.start(scanner, assembler, {
          ...tableSettings,
          label: `dlrm v${model.version}`,
          logger: options.logger,
        });
      const items = new CandidateItems(assembler, new EncodedItemReader(assembler, options.itemCache), table, observer);
      return new DlrmModel(session, model.version, layout, assembler, historySlots(spec), items, batcher);
    } catch (error) {
      table?.close();
      await session.release();
      throw error;
    }
  }

  get provider(): ExecutionProvider {
    return this.session.provider;
  }

  /** Called once no request holds this version any more. */
  async release(): Promise<void> {
    this.batcher.close();
    this.items.close();
    await this.session.release();
  }
}
