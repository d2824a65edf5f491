/** What a limiter reports when a window ends with lines left out. */
export interface SuppressedLines {
  key: string;
  /** Lines not written for this key in the window. */
  suppressed: number;
  windowMs: number;
}

export interface LogRateLimiterOptions {
  /** Lines written per key per window; 0 writes none (the summaries still come). */
  perWindow: number;
  windowMs: number;
  /** Called once per key and window in which lines were left out, when the window is over. */
  onSuppressed: (summary: SuppressedLines) => void;
  /** Most keys tracked at once; keys beyond it share one ("other"), so odd keys cannot grow memory. */
  maxKeys?: number;
  now?: () => number;
}

interface Window {
  startedAt: number;
  written: number;
  suppressed: number;
}

const OTHER = 'other';

/**
 * At most `perWindow` lines per key (e.g. stage and cause) in each window, then one summary of how many were
 * left out: an overload writes a bounded number of lines instead of one per request. Windows are fixed per
 * key, starting at its first line; `start()` reports a window that ended without a later line for its key.
 */
export class LogRateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LogRateLimiterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Whether a line for `key` may be written now; counts it as left out when not. */
  allow(key: string): boolean {
    const now = this.now();
    let window = this.windows.get(key);
    if (window && now - window.startedAt >= this.options.windowMs) {
      this.report(key, window);
      window = undefined;
    }
    if (!window) {
      if (!this.windows.has(key) && this.windows.size >= (this.options.maxKeys ?? 1000) && key !== OTHER) return this.allow(OTHER);
      window = { startedAt: now, written: 0, suppressed: 0 };
      this.windows.set(key, window);
    }
    if (window.written < this.options.perWindow) {
      window.written++;
      return true;
    }
    window.suppressed++;
    return false;
  }

  /** Reports and forgets the windows that are over. */
  sweep(): void {
    const now = this.now();
    for (const [key, window] of this.windows) {
      if (now - window.startedAt >= this.options.windowMs) {
        this.report(key, window);
        this.windows.delete(key);
      }
    }
  }

  /** Sweeps once per window in the background (the timer does not keep the process alive). */
  start(): this {
    this.timer ??= setInterval(() => this.sweep(), this.options.windowMs).unref();
    return this;
  }

  /** Stops the sweeps and reports what the current windows left out. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const [key, window] of this.windows) this.report(key, window);
    this.windows.clear();
  }

  private report(key: string, window: Window): void {
    if (window.suppressed > 0) this.options.onSuppressed({ key, suppressed: window.suppressed, windowMs: this.options.windowMs });
  }
}
