import { join } from 'node:path';
import {
  connectionOf,
  findLatestVersion,
  openHnswIndex,
  openQdrantStore,
  type IndexTarget,
  type QdrantStore,
  type VectorStore,
} from '@recsys/vector-index';

/** Where index versions are published: which one is newest, and how to open one. */
export interface IndexSource {
  readonly backend: IndexTarget['kind'];
  /** For logs: the directory or the Qdrant alias. */
  readonly location: string;
  /** The newest published version, or undefined when there is none (polled, so cheap). */
  latestVersion(): Promise<string | undefined>;
  open(version: string): Promise<VectorStore>;
  close(): Promise<void>;
}

/** Embedded HNSW versions: `<root>/<version>/`, complete once meta.json is there (recsys-index build writes them). */
class EmbeddedIndexSource implements IndexSource {
  readonly backend = 'embedded';
  constructor(
    readonly location: string,
    private readonly expansionSearch: number | undefined,
  ) {}

  latestVersion(): Promise<string | undefined> {
    return findLatestVersion(this.location);
  }

  async open(version: string): Promise<VectorStore> {
    return openHnswIndex(join(this.location, version), this.expansionSearch !== undefined ? { expansionSearch: this.expansionSearch } : {});
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

type QdrantTarget = Extract<IndexTarget, { kind: 'qdrant' }>;

/**
 * Qdrant versions are collections behind an alias. The alias says which version is newest; each version is opened
 * pinned to its own collection, so it is searched only together with the user tower of its two-tower version (a new
 * version serves from the watcher's next poll, when its tower is loaded too).
 */
class QdrantIndexSource implements IndexSource {
  readonly backend = 'qdrant';
  private probe: QdrantStore | undefined;

  constructor(
    private readonly target: QdrantTarget,
    private readonly hnswEf: number | undefined,
  ) {}

  get location(): string {
    return `${this.target.url} alias ${this.target.collection}`;
  }

  /** The alias (version undefined) or one version's collection. */
  private connect(version?: string): Promise<QdrantStore> {
    return openQdrantStore(connectionOf(this.target), this.target.collection, {
      refreshIntervalMs: 0,
      ...(this.hnswEf !== undefined ? { hnswEf: this.hnswEf } : {}),
      ...(version !== undefined ? { version } : {}),
    });
  }

  async latestVersion(): Promise<string | undefined> {
    this.probe ??= await this.connect();
    return (await this.probe.reload()).version;
  }

  open(version: string): Promise<VectorStore> {
    return this.connect(version);
  }

  async close(): Promise<void> {
    await this.probe?.close();
  }
}

/** `expansionSearch` overrides the HNSW search beam width of every version opened (undefined: the index's own). */
export function createIndexSource(target: IndexTarget, expansionSearch?: number): IndexSource {
  return target.kind === 'embedded'
    ? new EmbeddedIndexSource(target.root, expansionSearch)
    : new QdrantIndexSource(target, expansionSearch);
}
