import type { Logger } from '@recsys/service-kit';
import type { IndexSource } from './index-source.js';
import type { RetrievalMetrics } from './retrieval-metrics.js';
import { closeServingIndex, type ServingIndex, type ServingIndexHolder } from './serving-index.js';

/**
 * Follows the newest published index version: when it differs from the serving one, the version and its matching
 * user tower are loaded and swapped in together. A version that cannot serve is refused with an error log (once)
 * and the serving pair keeps serving.
 */
export class IndexWatcher {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private refused: string | undefined;
  private stopped = false;

  constructor(
    private readonly source: IndexSource,
    private readonly holder: ServingIndexHolder,
    private readonly load: (version: string) => Promise<ServingIndex>,
    private readonly metrics: RetrievalMetrics,
    private readonly logger: Logger,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    // Polling alone never keeps the process alive.
    this.timer.unref();
  }

  /** Stops polling and waits for a check under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.checking;
  }

  /** One look for a new version; overlapping calls share the check under way. */
  check(): Promise<void> {
    this.checking ??= this.swapToLatest().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async swapToLatest(): Promise<void> {
    let latest: string | undefined;
    try {
      latest = await this.source.latestVersion();
    } catch (error) {
      this.logger.warn({ err: error, index: this.source.location }, 'could not look for a new index version');
      return;
    }
    const serving = this.holder.current.info;
    if (latest === undefined || latest === serving.version || latest === this.refused || this.stopped) return;
    let next: ServingIndex;
    try {
      next = await this.load(latest);
    } catch (error) {
      this.refused = latest;
      this.metrics.indexSwap('refused');
      this.logger.error(
        { err: error, version: latest, servingVersion: serving.version, servingModelVersion: serving.modelVersion },
        `index version ${latest} refused; version ${serving.version} keeps serving`,
      );
      return;
    }
    if (this.stopped) {
      await closeServingIndex(next);
      return;
    }
    this.holder.swap(next);
    this.refused = undefined;
    this.metrics.indexSwap('ok');
    this.logger.info(
      { version: next.info.version, modelVersion: next.info.modelVersion, size: next.info.size, previousVersion: serving.version },
      `index version ${next.info.version} serving (two-tower ${next.info.modelVersion})`,
    );
  }
}
