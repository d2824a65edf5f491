import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddedIndexWatcher, type EmbeddedWatcherOptions } from './embedded-watcher.js';
import { VectorIndexArgumentError } from './errors.js';
import { buildHnswIndex, openHnswIndex, type BuildHnswOptions, type OpenHnswOptions } from './hnsw-store.js';
import { openQdrantStore, publishQdrantIndex, type OpenQdrantOptions, type PublishQdrantOptions } from './qdrant-store.js';
import { type QdrantConnection } from './qdrant-rest.js';
import { SwappableStore } from './swappable-store.js';
import { assertVersionName, compareVersions, findLatestVersion, listVersions } from './versions.js';
import { type IndexBuildInput, type IndexInfo, type VectorStore } from './vector-store.js';

/** Where a version is published and served from. */
export type IndexTarget =
  /** Version directories `<root>/<version>/`; the latest complete one (compareVersions order) serves. */
  | { kind: 'embedded'; root: string }
  /** Collections `<collection>_v<version>` behind the alias `<collection>`; timeouts and retries per QdrantConnection. */
  | ({ kind: 'qdrant'; collection: string } & QdrantConnection);

export interface PublishOptions extends BuildHnswOptions, Omit<PublishQdrantOptions, 'hnsw' | 'querySample'> {
  /** Qdrant collection HNSW parameters (the embedded index takes `hnsw` from BuildHnswOptions). */
  qdrantHnsw?: PublishQdrantOptions['hnsw'];
}

/** Embedded versions kept by default, the new one included: the previous one stays for rollback. */
export const DEFAULT_EMBEDDED_RETAIN = 3;

/**
 * Builds `input.version` at the target and makes it the serving version: embedded — writes `<root>/<version>/`
 * atomically (the version must sort after every existing one, or it would not serve) and removes versions beyond
 * `retain`; Qdrant — see publishQdrantIndex.
 */
export async function publishIndex(target: IndexTarget, input: IndexBuildInput, options: PublishOptions = {}): Promise<IndexInfo> {
  if (target.kind === 'qdrant') {
    // Embedded-only settings (threads, hnsw) stay out; everything else is the Qdrant publish's own option.
    const qdrant: PublishQdrantOptions = { ...options, hnsw: options.qdrantHnsw };
    delete (qdrant as { threads?: number }).threads;
    return publishQdrantIndex(connectionOf(target), target.collection, input, qdrant);
  }
  if (target.kind !== 'embedded')
    throw new VectorIndexArgumentError('target.kind', `unknown target kind ${JSON.stringify((target as { kind: unknown }).kind)}`);
  const { root } = target;
  assertVersionName(input.version);
  const { retain = DEFAULT_EMBEDDED_RETAIN } = options;
  if (!Number.isInteger(retain) || retain < 1) throw new VectorIndexArgumentError('retain', `${retain} is not a positive integer`);
  const latest = await findLatestVersion(root);
  if (latest !== undefined && compareVersions(input.version, latest) <= 0)
    throw new VectorIndexArgumentError('version', `"${input.version}" does not sort after the latest version "${latest}" under ${root}`);
  const meta = await buildHnswIndex(input, join(root, input.version), options);
  const versions = await listVersions(root);
  for (const old of versions.slice(0, Math.max(0, versions.length - retain))) await rm(join(root, old), { recursive: true, force: true });
  return {
    version: meta.version,
    backend: 'embedded',
    size: meta.count,
    dimension: meta.dim,
    metric: meta.metric,
    modelVersion: meta.modelVersion,
  };
}

/** The connection settings of a Qdrant target (everything but kind and collection), timeouts included. */
export function connectionOf(target: Extract<IndexTarget, { kind: 'qdrant' }>): QdrantConnection {
  const connection: QdrantConnection & { kind?: string; collection?: string } = { ...target };
  delete connection.kind;
  delete connection.collection;
  return connection;
}

/** A store that follows the serving version. */
export interface ServingStore extends VectorStore {
  /**
   * Re-reads which version serves and switches to it (embedded: opens the latest version and swaps it in, in-flight
   * calls finishing on the old one; Qdrant: re-reads the alias, which requests already follow). Resolves with its info.
   */
  reload(): Promise<IndexInfo>;
}

export interface OpenStoreOptions {
  /** Embedded: how each version is opened. */
  embedded?: OpenHnswOptions;
  /** Embedded: poll the root for a newer version this often (default 0: only on reload()). */
  pollIntervalMs?: number;
  onSwap?: EmbeddedWatcherOptions['onSwap'];
  onError?: EmbeddedWatcherOptions['onError'];
  qdrant?: OpenQdrantOptions;
}

/** An embedded store that swaps to the latest version under its root on reload() or on a poll. */
export class EmbeddedServingStore extends SwappableStore implements ServingStore {
  readonly watcher: EmbeddedIndexWatcher;

  constructor(root: string, initial: VectorStore, options: EmbeddedWatcherOptions = {}) {
    super(initial);
    this.watcher = new EmbeddedIndexWatcher(root, this, options);
  }

  reload(): Promise<IndexInfo> {
    return this.watcher.checkNow();
  }

  override async close(): Promise<void> {
    this.watcher.stop();
    await super.close();
  }
}

/** Opens the serving version of the target; fails clearly when nothing has been published there. */
export async function openStore(target: IndexTarget, options: OpenStoreOptions = {}): Promise<ServingStore> {
  if (target.kind === 'qdrant') return openQdrantStore(connectionOf(target), target.collection, options.qdrant);
  if (target.kind !== 'embedded')
    throw new VectorIndexArgumentError('target.kind', `unknown target kind ${JSON.stringify((target as { kind: unknown }).kind)}`);
  const latest = await findLatestVersion(target.root);
  if (latest === undefined) throw new Error(`no complete index version under ${target.root}: publish one first`);
  const initial = await openHnswIndex(join(target.root, latest), options.embedded);
  const store = new EmbeddedServingStore(target.root, initial, {
    ...(options.embedded !== undefined ? { open: options.embedded } : {}),
    ...(options.onSwap !== undefined ? { onSwap: options.onSwap } : {}),
    ...(options.onError !== undefined ? { onError: options.onError } : {}),
  });
  const { pollIntervalMs = 0 } = options;
  if (pollIntervalMs > 0) store.watcher.start(pollIntervalMs);
  return store;
}
