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
    private readonly search: IndexSearchSettings,
  ) {}

  latestVersion(): Promise<string | undefined> {
    return findLatestVersion(this.location);
  }

  async open(version: string): Promise<VectorStore> {
    const { expansionSearch, expansionPerResult, neighbourCacheItems, searchWorkers } = this.search;
    return openHnswIndex(join(this.location, version), {
      ...(expansionSearch !== undefined ? { expansionSearch } : {}),
      ...(expansionPerResult !== undefined ? { expansionPerResult } : {}),
      ...(neighbourCacheItems !== undefined ? { neighbourCacheItems } : {}),
      ...(searchWorkers !== undefined ? { searchWorkers } : {}),
    });
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
    private readonly search: IndexSearchSettings,
  ) {}

  get location(): string {
    return `${this.target.url} alias ${this.target.collection}`;
  }

  /** The alias (version undefined) or one version's collection. */
  private connect(version?: string): Promise<QdrantStore> {
    const { expansionSearch, expansionPerResult } = this.search;
    return openQdrantStore(connectionOf(this.target), this.target.collection, {
      refreshIntervalMs: 0,
      ...(expansionSearch !== undefined ? { hnswEf: expansionSearch } : {}),
      ...(expansionPerResult !== undefined ? { expansionPerResult } : {}),
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

/** Search settings of every version opened; undefined keeps the index's own beam width and the library's rule. */
export interface IndexSearchSettings {
  /** The HNSW search beam width (embedded: usearch expansion; Qdrant: hnsw_ef). */
  expansionSearch?: number | undefined;
  /** The beam is at least this many candidates per result wanted. */
  expansionPerResult?: number | undefined;
  /** Items whose graph neighbours the embedded index keeps for item-to-item (Qdrant keeps none). */
  neighbourCacheItems?: number | undefined;
  /** Worker threads running the embedded index's graph searches (Qdrant searches on its own servers). */
  searchWorkers?: number | undefined;
}

export function createIndexSource(target: IndexTarget, search: IndexSearchSettings = {}): IndexSource {
  return target.kind === 'embedded' ? new EmbeddedIndexSource(target.root, search) : new QdrantIndexSource(target, search);
}
