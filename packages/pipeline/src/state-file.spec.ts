import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILE, STATE_FORMAT, StateFileError, readState, windowStart, writeState } from './state-file.js';

describe('state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recsys-up-state-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts empty, and reads back what was written (atomically: no temporary file left)', async () => {
    expect(await readState(dir)).toEqual({ format: STATE_FORMAT });
    const state = {
      format: STATE_FORMAT,
      syntheticStartTime: 1_790_000_000,
      index: { version: '3', twoTower: { modelsDir: '/m', version: '2', createdAt: '2026-11-29T00:00:00.000Z' } },
    } as const;
    await writeState(join(dir, 'new'), state);
    expect(await readState(join(dir, 'new'))).toEqual(state);
    expect(JSON.parse(readFileSync(join(dir, 'new', STATE_FILE), 'utf8'))).toEqual(state);
  });

  it('refuses a damaged file, naming it and the problem', async () => {
    const path = join(dir, STATE_FILE);
    writeFileSync(path, '{"format":');
    await expect(readState(dir)).rejects.toThrow(StateFileError);
    await expect(readState(dir)).rejects.toThrow(`${path}: not valid JSON`);
    writeFileSync(path, JSON.stringify({ format: 'other/9' }));
    await expect(readState(dir)).rejects.toThrow('unknown format "other/9"');
    writeFileSync(path, JSON.stringify({ format: STATE_FORMAT, syntheticStartTime: 'yesterday' }));
    await expect(readState(dir)).rejects.toThrow('"syntheticStartTime" is not a whole number of seconds');
    writeFileSync(path, JSON.stringify({ format: STATE_FORMAT, index: { version: '1' } }));
    await expect(readState(dir)).rejects.toThrow('"index" needs a version and twoTower');
  });

  it('chooses a window that ends at today’s UTC midnight once, then keeps it', () => {
    const now = Date.parse('2026-11-29T15:30:00Z');
    const first = windowStart({ format: STATE_FORMAT }, now, 30);
    expect(first).toEqual({ startTime: Date.parse('2026-10-30T00:00:00Z') / 1000, chosen: true });
    const later = windowStart({ format: STATE_FORMAT, syntheticStartTime: first.startTime }, now + 5 * 86_400_000, 30);
    expect(later).toEqual({ startTime: first.startTime, chosen: false });
    expect(windowStart({ format: STATE_FORMAT }, now, 7).startTime).toBe(Date.parse('2026-11-22T00:00:00Z') / 1000);
  });
});
