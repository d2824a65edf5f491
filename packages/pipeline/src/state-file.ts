import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const STATE_FILE = 'state.json';
export const STATE_FORMAT = 'recsys-up.state/1';

const DAY_SECONDS = 86_400;

/** What a work directory remembers between runs, so the caches hold. */
export interface PipelineState {
  format: typeof STATE_FORMAT;
  /** Start of the synthetic data window (Unix seconds), chosen at the first run. */
  syntheticStartTime?: number;
  /** The index version last built here and the two-tower version it holds. */
  index?: { version: string; twoTower: TwoTowerIdentity };
}

/** Which two-tower version an index was built from: its model root, version and creation time. */
export interface TwoTowerIdentity {
  modelsDir: string;
  version: string;
  createdAt: string;
}

export class StateFileError extends Error {}

export async function readState(workDir: string): Promise<PipelineState> {
  const path = join(workDir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { format: STATE_FORMAT };
    throw error;
  }
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(`${path}: not valid JSON (${(error as Error).message}); delete it to start afresh`);
  }
  const problem = stateProblem(state);
  if (problem !== undefined) throw new StateFileError(`${path}: ${problem}; delete it to start afresh`);
  return state as PipelineState;
}

function stateProblem(state: unknown): string | undefined {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) return 'not a JSON object';
  const s = state as Record<string, unknown>;
  if (s.format !== STATE_FORMAT) return `unknown format ${JSON.stringify(s.format)} (expected "${STATE_FORMAT}")`;
  if (s.syntheticStartTime !== undefined && !(Number.isInteger(s.syntheticStartTime) && (s.syntheticStartTime as number) >= 0))
    return '"syntheticStartTime" is not a whole number of seconds';
  if (s.index !== undefined) {
    const index = s.index as Record<string, unknown> | null;
    const twoTower = index?.twoTower as Record<string, unknown> | null | undefined;
    if (
      typeof index?.version !== 'string' ||
      typeof twoTower?.modelsDir !== 'string' ||
      typeof twoTower.version !== 'string' ||
      typeof twoTower.createdAt !== 'string'
    )
      return '"index" needs a version and twoTower { modelsDir, version, createdAt }';
  }
  return undefined;
}

/** Written to a temporary file and renamed, so a crash never leaves half a state file. */
export async function writeState(workDir: string, state: PipelineState): Promise<void> {
  await mkdir(workDir, { recursive: true });
  const path = join(workDir, STATE_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`);
  await rename(temporary, path);
}

/** The window start: the remembered one, else one that makes a `days`-long window end at today's UTC midnight. */
export function windowStart(state: PipelineState, nowMs: number, days: number): { startTime: number; chosen: boolean } {
  if (state.syntheticStartTime !== undefined) return { startTime: state.syntheticStartTime, chosen: false };
  const today = Math.floor(nowMs / 1000 / DAY_SECONDS) * DAY_SECONDS;
  return { startTime: today - days * DAY_SECONDS, chosen: true };
}
