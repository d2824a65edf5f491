import { join } from 'node:path';
import { openHnswIndex, type OpenHnswOptions } from './hnsw-store.js';
import { type SwappableStore } from './swappable-store.js';
import { findLatestVersion } from './versions.js';
import { type IndexInfo } from './vector-store.js';

export interface EmbeddedWatcherOptions {
  /** Options for opening each new version. */
  open?: OpenHnswOptions;
  /** Called after a swap with the new and the previous version's info. */
  onSwap?: (current: IndexInfo, previous: IndexInfo) => void;
  /** Called when a poll fails (unreadable root, corrupt new version); the store keeps serving what it has. */
  onError?: (error: unknown) => void;
}

/**
 * Keeps a SwappableStore on the latest complete version under an embedded index root: `checkNow` (an admin call)
 * or a poll timer opens the latest version when it differs from the serving one and swaps it in. Removing the newest
 * version directory therefore rolls back. A version that failed to open is skipped by polls until it changes name;
 * `checkNow` always retries.
 */
export class EmbeddedIndexWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<IndexInfo> | undefined;
  private failedVersion: string | undefined;

  constructor(
    readonly root: string,
    private readonly store: SwappableStore,
    private readonly options: EmbeddedWatcherOptions = {},
  ) {}

  /** Polls every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs: number): void {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new Error(`intervalMs must be a positive number, got ${intervalMs}`);
    this.stop();
    this.timer = setInterval(() => {
      this.check(false).catch((error: unknown) => this.options.onError?.(error));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Swaps to the latest version if it is not the serving one; resolves with the serving info afterwards. */
  checkNow(): Promise<IndexInfo> {
    return this.check(true);
  }

  private check(retryFailed: boolean): Promise<IndexInfo> {
    // One check at a time: two overlapping checks would open the same version twice.
    const previous = this.running ?? Promise.resolve(this.store.info());
    const next = previous.catch(() => undefined).then(() => this.swapToLatest(retryFailed));
    this.running = next;
    const clear = (): void => {
      if (this.running === next) this.running = undefined;
    };
    next.then(clear, clear);
    return next;
  }

  private async swapToLatest(retryFailed: boolean): Promise<IndexInfo> {
    const serving = this.store.info();
    const latest = await findLatestVersion(this.root);
    if (latest === undefined) throw new Error(`no complete index version under ${this.root}`);
    if (latest === serving.version || (!retryFailed && latest === this.failedVersion)) return serving;
    let opened;
    try {
      opened = await openHnswIndex(join(this.root, latest), this.options.open);
      // A directory must hold the version it is named after, or every poll would see a "new" version.
      if (opened.info().version !== latest) {
        await opened.close();
        throw new Error(`${join(this.root, latest)} holds version "${opened.info().version}", not "${latest}"`);
      }
    } catch (error) {
      this.failedVersion = latest;
      throw error;
    }
    this.failedVersion = undefined;
    const previous = await this.store.swap(opened);
    const current = opened.info();
    this.options.onSwap?.(current, previous);
    return current;
  }
}
