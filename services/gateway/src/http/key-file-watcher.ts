import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What changes when the keys file or a mounted Secret directory is rotated: the file's size and mtime, or each
 * key file's (links followed) and the `..data` link Kubernetes swaps atomically. Unreadable reads as its own state.
 */
export function keysFileSignature(path: string): string {
  try {
    const stat = statSync(path);
    if (!stat.isDirectory()) return `f:${stat.size}:${stat.mtimeMs}`;
    const parts: string[] = [];
    try {
      parts.push(`data:${readlinkSync(join(path, '..data'))}`);
    } catch {
      // Not a Kubernetes Secret mount (or an older layout): the files' own stats decide.
    }
    for (const entry of readdirSync(path).sort()) {
      if (entry.startsWith('.')) continue;
      const file = statSync(join(path, entry));
      parts.push(`${entry}:${file.size}:${file.mtimeMs}`);
    }
    return `d:${parts.join('|')}`;
  } catch (error) {
    return `error:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

/** Polls the keys file (API_KEYS_FILE) and calls back when it changed, so rotated keys take effect without a restart. */
export class KeyFileWatcher {
  private signature: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly path: string,
    private readonly onChange: () => void,
  ) {
    this.signature = keysFileSignature(path);
  }

  /** Compares with the last look; true (and the callback run) when the file changed. */
  check(): boolean {
    const now = keysFileSignature(this.path);
    if (now === this.signature) return false;
    this.signature = now;
    this.onChange();
    return true;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
