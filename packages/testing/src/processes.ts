import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The workspace root, found from here whether this runs as source (jest) or compiled (benchmarks). */
export const repoRoot = (() => {
  let dir = __dirname;
  while (!existsSync(resolve(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${__dirname}`);
    dir = parent;
  }
  return dir;
})();

/** A built entry point (`pnpm build` runs before the tests); a clear error when it is missing. */
export function builtEntry(relative: string): string {
  const path = resolve(repoRoot, relative);
  if (!existsSync(path)) throw new Error(`${relative} is missing: run \`pnpm build\` before these tests`);
  return path;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a node script to completion, killing it after the timeout. */
export function runNode(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30000): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** Starts a long-running node script; `exited` resolves when it ends. */
export function startNode(
  script: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<RunResult> } {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<RunResult>((done) => child.on('exit', (code, signal) => done({ code, signal, stdout, stderr })));
  return { child, output: () => stdout + stderr, exited };
}
