import { spawn, type ChildProcess } from 'node:child_process';

// Where the workspace is and its built entry points: shared with the pipeline launcher.
export { builtEntry, repoRoot } from '@recsys/service-kit';

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

/**
 * Starts a long-running node script; `exited` resolves when it ends. `nodeFlags` go on node's command line before the
 * script (V8 flags such as service-kit's SERVING_NODE_FLAGS, or --trace-gc, which node refuses in NODE_OPTIONS).
 */
export function startNode(
  script: string,
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): { child: ChildProcess; output: () => string; exited: Promise<RunResult> } {
  const child = spawn(process.execPath, [...nodeFlags, script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<RunResult>((done) => child.on('exit', (code, signal) => done({ code, signal, stdout, stderr })));
  return { child, output: () => stdout + stderr, exited };
}
