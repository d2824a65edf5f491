import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { type GraphDescription, type ModelName, listVersions } from '@recsys/model-format';
import { errorMessage } from './error-message.js';
import { zeroFeeds } from './feeds.js';
import { ModelLoadError, type ModelVersion, loadModelVersion } from '@recsys/model-format';
import type { ModelSession } from './onnx-session.js';

export interface ModelWatcherLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What became of a version the watcher tried: it serves now, or it was refused and the previous one still serves. */
export type ModelReloadEvent =
  | { outcome: 'loaded'; name: ModelName; version: string; previous: string | undefined; ms: number }
  | { outcome: 'refused'; name: ModelName; version: string; error: string };

export interface ModelWatcherOptions<T> {
  /** Model root: versions are `<root>/<name>/<integer>/`. */
  root: string;
  name: ModelName;
  /** Makes a version servable (sessions created, inputs checked, warmed up); throwing refuses the version. */
  load(version: ModelVersion): Promise<T>;
  /** Frees what `load` made, once no request uses it any more. */
  release(model: T): Promise<void>;
  /** Slow poll for new versions, in case file-system events are lost (network volumes); 0 disables it. Default 10 s. */
  pollIntervalMs?: number;
  /** Watch the model directory for new versions (default true). */
  watch?: boolean;
  /** Events arrive in bursts (a rename is several); one check follows the last. Default 100 ms. */
  debounceMs?: number;
  logger?: ModelWatcherLogger;
  onEvent?(event: ModelReloadEvent): void;
}

/** One request's hold on a model: the model is not released before every lease on it is. */
export interface ModelLease<T> {
  readonly model: T;
  readonly version: string;
  release(): void;
}

class Slot<T> {
  /** The watcher's own reference while the slot is current, plus one per lease. */
  refs = 1;
  constructor(
    readonly model: T,
    readonly version: string,
    readonly loadMs: number,
  ) {}
}

/**
 * Serves the newest loadable version of a model and swaps in newer ones as they are published: each is
 * read with its checksums (`loadModelVersion`), made servable by `load` (which refuses a broken one by
 * throwing), and only then replaces the current one. Requests hold leases, so a replaced version is
 * released only after its last request finished. A refused version is logged, reported and not retried.
 */
export class ModelWatcher<T> {
  private current: Slot<T>;
  private readonly refused = new Set<string>();
  private fsWatcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly releases = new Set<Promise<void>>();

  private constructor(
    private readonly options: ModelWatcherOptions<T>,
    first: Slot<T>,
  ) {
    this.current = first;
  }

  /** Loads the newest version that loads (older ones are tried when newer ones are refused), then watches for new ones. */
  static async start<T>(options: ModelWatcherOptions<T>): Promise<ModelWatcher<T>> {
    const dir = join(options.root, options.name);
    const versions = await listVersions(options.root, options.name);
    if (versions.length === 0) throw new ModelLoadError(`no published version of ${options.name} under ${dir}`);
    const refused: string[] = [];
    for (const version of versions.reverse()) {
      const slot = await ModelWatcher.tryLoad(options, version, undefined);
      if (slot) {
        const watcher = new ModelWatcher(options, slot);
        for (const v of refused) watcher.refused.add(v);
        ModelWatcher.loaded(options, slot, undefined);
        watcher.startWatching();
        return watcher;
      }
      refused.push(version);
    }
    throw new ModelLoadError(`no version of ${options.name} under ${dir} could be loaded (refused: ${refused.join(', ')})`);
  }

  private static async tryLoad<T>(
    options: ModelWatcherOptions<T>,
    version: string,
    previous: string | undefined,
  ): Promise<Slot<T> | undefined> {
    const started = performance.now();
    try {
      const model = await options.load(await loadModelVersion(options.root, options.name, version));
      return new Slot(model, version, performance.now() - started);
    } catch (error) {
      const problem = errorMessage(error);
      options.logger?.error(
        { model: options.name, version, serving: previous, err: error },
        `${options.name} v${version} refused: ${problem}${previous ? `; v${previous} keeps serving` : ''}`,
      );
      options.onEvent?.({ outcome: 'refused', name: options.name, version, error: problem });
      return undefined;
    }
  }

  /** Reported once the version serves. */
  private static loaded<T>(options: ModelWatcherOptions<T>, slot: Slot<T>, previous: string | undefined): void {
    const { version, loadMs: ms } = slot;
    options.logger?.info(
      { model: options.name, version, previous, ms: Math.round(ms) },
      previous === undefined ? `${options.name} v${version} loaded` : `${options.name} v${version} replaces v${previous}`,
    );
    options.onEvent?.({ outcome: 'loaded', name: options.name, version, previous, ms });
  }

  get version(): string {
    return this.current.version;
  }

  /** The model serving now; the caller must release the lease when its request is done. */
  acquire(): ModelLease<T> {
    const slot = this.current;
    slot.refs++;
    let released = false;
    return {
      model: slot.model,
      version: slot.version,
      release: () => {
        if (released) return;
        released = true;
        this.unref(slot);
      },
    };
  }

  /** Looks for a newer version now (file events and the poll call it; so may an operator's signal). */
  check(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.again = false;
        try {
          await this.checkOnce();
        } catch (error) {
          this.options.logger?.error({ model: this.options.name, err: error }, `${this.options.name}: looking for new versions failed`);
        }
      } while (this.again && !this.closed);
    })().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const currentNumber = Number(this.current.version);
    const newer = (await listVersions(this.options.root, this.options.name))
      .filter((v) => Number(v) > currentNumber && !this.refused.has(v))
      .reverse();
    for (const version of newer) {
      if (this.closed) return;
      const slot = await ModelWatcher.tryLoad(this.options, version, this.current.version);
      if (!slot) {
        this.refused.add(version);
        continue;
      }
      if (this.closed) {
        slot.refs = 0;
        this.releaseSlot(slot);
        return;
      }
      const previous = this.current;
      this.current = slot;
      ModelWatcher.loaded(this.options, slot, previous.version);
      this.unref(previous);
      return;
    }
  }

  private unref(slot: Slot<T>): void {
    if (--slot.refs === 0) this.releaseSlot(slot);
  }

  private releaseSlot(slot: Slot<T>): void {
    const done = this.options
      .release(slot.model)
      .catch((error: unknown) =>
        this.options.logger?.warn({ model: this.options.name, version: slot.version, err: error }, 'releasing a model version failed'),
      )
      .finally(() => this.releases.delete(done));
    this.releases.add(done);
  }

  private startWatching(): void {
    const { options } = this;
    if (options.watch ?? true) {
      try {
        this.fsWatcher = watch(join(options.root, options.name), { persistent: false }, () => this.scheduleCheck());
        this.fsWatcher.on('error', (error) => {
          options.logger?.warn({ model: options.name, err: error }, `${options.name}: watching the model directory failed; polling only`);
          this.fsWatcher?.close();
          this.fsWatcher = undefined;
        });
      } catch (error) {
        options.logger?.warn({ model: options.name, err: error }, `${options.name}: cannot watch the model directory; polling only`);
      }
    }
    const poll = options.pollIntervalMs ?? 10_000;
    if (poll > 0) {
      this.pollTimer = setInterval(() => void this.check(), poll);
      this.pollTimer.unref();
    }
  }

  private scheduleCheck(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.check(), this.options.debounceMs ?? 100);
    this.debounceTimer.unref();
  }

  /** Stops watching; the current version is released once its last lease is (at once when none is held). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fsWatcher?.close();
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    await this.checking;
    this.unref(this.current);
    await Promise.all(this.releases);
  }
}

/**
 * A first run on zero feeds before a session takes traffic: it allocates what the first request would,
 * and proves the graph answers finite values of the manifest's output shapes.
 */
export async function warmUpSession(session: ModelSession, graph: Pick<GraphDescription, 'outputs'>, batch = 2): Promise<void> {
  const out = await session.run(zeroFeeds(session.inputs, batch));
  for (const output of graph.outputs) {
    const values = out[output.name];
    if (!values) throw new ModelLoadError(`${session.label}: the graph has no output "${output.name}" (the manifest lists it)`);
    const size = output.shape.reduce<number>((n, d) => n * (typeof d === 'number' ? d : batch), 1);
    if (values.length !== size) {
      throw new ModelLoadError(
        `${session.label}: output "${output.name}" holds ${values.length} values for ${batch} rows of [${output.shape}]`,
      );
    }
    for (let k = 0; k < values.length; k++) {
      if (!Number.isFinite(values[k])) throw new ModelLoadError(`${session.label}: output "${output.name}" is not finite on zero inputs`);
    }
  }
}
