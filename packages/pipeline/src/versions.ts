import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Natural order (runs of digits compare as numbers: 2 < 10), the order the retrieval service picks its newest index by. */
export function compareVersionNames(a: string, b: string): number {
  const partsA = a.match(/\d+|\D+/g) ?? [];
  const partsB = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(partsA.length, partsB.length); i++) {
    const x = partsA[i]!;
    const y = partsB[i]!;
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    const order = numeric ? compareDigits(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return order;
  }
  return partsA.length - partsB.length || (a < b ? -1 : a > b ? 1 : 0);
}

function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+/, '');
  const b = y.replace(/^0+/, '');
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The newest complete embedded index version under `root` (a directory with meta.json, written last), if any. */
export async function newestIndexVersion(root: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const complete: string[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const meta = await stat(join(root, name, 'meta.json')).catch(() => undefined);
    if (meta?.isFile()) complete.push(name);
  }
  return complete.sort(compareVersionNames).at(-1);
}
