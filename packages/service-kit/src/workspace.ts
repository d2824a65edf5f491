import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The workspace root, found from here whether this runs as source (jest) or compiled (services, benchmarks). */
export const repoRoot = (() => {
  let dir = __dirname;
  while (!existsSync(resolve(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${__dirname}`);
    dir = parent;
  }
  return dir;
})();

/** A built entry point of the workspace; a clear error naming the build to run when it is missing. */
export function builtEntry(relative: string, build = '`pnpm build`'): string {
  const path = resolve(repoRoot, relative);
  if (!existsSync(path)) throw new Error(`${relative} is missing: run ${build} first`);
  return path;
}
