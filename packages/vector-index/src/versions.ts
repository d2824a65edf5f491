import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VectorIndexArgumentError } from './errors.js';

/** Version names are safe as directory names and Qdrant collection suffixes. */
const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/;

/** The file whose presence marks a complete embedded index version (it is written last, inside the staging dir). */
export const META_FILE = 'meta.json';

export function assertVersionName(version: string, field = 'version'): void {
  if (typeof version !== 'string' || !VERSION_PATTERN.test(version))
    throw new VectorIndexArgumentError(
      field,
      `"${String(version)}" is not a valid version name (1–64 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
    );
}

/**
 * Natural order of version names: runs of digits compare as numbers (2 < 10, 007 = 7), other runs by code unit, so
 * plain integers (1, 2, …, 10) and timestamps (20250101-1200) order as they read. Total: equal only for equal strings.
 */
export function compareVersions(a: string, b: string): number {
  const partsA = a.match(/\d+|\D+/g) ?? [];
  const partsB = b.match(/\d+|\D+/g) ?? [];
  const n = Math.min(partsA.length, partsB.length);
  for (let i = 0; i < n; i++) {
    const x = partsA[i] as string;
    const y = partsB[i] as string;
    if (isDigit(x) && isDigit(y)) {
      const xs = x.replace(/^0+/, '');
      const ys = y.replace(/^0+/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  if (partsA.length !== partsB.length) return partsA.length - partsB.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDigit(part: string): boolean {
  const c = part.charCodeAt(0);
  return c >= 48 && c <= 57;
}

/**
 * The complete versions under `root` (sub-directories with a valid version name and a meta.json), oldest first.
 * Staging directories start with '.' and are never listed. A missing root has no versions.
 */
export async function listVersions(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const complete: string[] = [];
  for (const name of entries) {
    if (!VERSION_PATTERN.test(name)) continue;
    try {
      if ((await stat(join(root, name, META_FILE))).isFile()) complete.push(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
    }
  }
  return complete.sort(compareVersions);
}

/** The newest complete version under `root`, or undefined when there is none. */
export async function findLatestVersion(root: string): Promise<string | undefined> {
  const versions = await listVersions(root);
  return versions[versions.length - 1];
}
