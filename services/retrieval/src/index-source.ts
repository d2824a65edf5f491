import { join } from 'node:path';
import {
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
 * Qdrant versions are collections behind an alias. The store reads through the alias, so a new version is searched
 * as soon as it is published; the watcher's next poll brings the user tower of its two-tower version.
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

  private connect(): Promise<QdrantStore> {
    const { url, apiKey, collection } = this.target;
    return openQdrantStore({ url, ...(apiKey !== undefined ? { apiKey } : {}) }, collection, {
      refreshIntervalMs: 0,
      ...(this.hnswEf !== undefined ? { hnswEf: this.hnswEf } : {}),
    });
  }

  async latestVersion(): Promise<string | undefined> {
    this.probe ??= await this.connect();
    return (await this.probe.reload()).version;
  }

  async open(version: string): Promise<VectorStore> {
    const store = await this.connect();
    const serving = store.info().version;
    if (serving !== version) {
      await store.close();
      throw new Error(`Qdrant alias ${this.target.collection} moved to version ${serving} while version ${version} was being opened`);
    }
    return store;
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
