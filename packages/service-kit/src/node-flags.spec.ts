import { execFileSync } from 'node:child_process';
import { SERVING_NODE_FLAGS } from './node-flags.js';

/**
 * The smallest and largest size of V8's new space in a fresh node process started with these flags, over an allocation
 * load whose objects survive a few scavenges (as a served request's do), then a full GC.
 */
function newSpaceRange(flags: readonly string[]): { min: number; max: number } {
  const code = `
    const v8 = require('node:v8');
    const size = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20;
    let min = size(), max = size();
    const kept = [];
    for (let i = 0; i < 3e6; i++) {
      kept.push({ i, text: 'item-' + i });
      if (kept.length > 200000) kept.splice(0, 100000);
      if (i % 50000 === 0) { min = Math.min(min, size()); max = Math.max(max, size()); }
    }
    kept.length = 0;
    globalThis.gc();
    min = Math.min(min, size());
    max = Math.max(max, size());
    console.log(JSON.stringify({ min, max }));
  `;
  const out = execFileSync(process.execPath, [...flags, '--expose-gc', '-e', code], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { min: number; max: number };
}

describe('the serving processes V8 flags', () => {
  it('pin the young generation: 16 to 32 MiB of new space (one semi-space, then both), where V8 alone grows it past 32', () => {
    expect(newSpaceRange(SERVING_NODE_FLAGS)).toEqual({ min: 16, max: 32 });
    // The control: the same load under V8's own sizing starts the new space smaller and grows it further.
    const own = newSpaceRange([]);
    expect(own.min).toBeLessThan(16);
    expect(own.max).toBeGreaterThan(32);
  });
});
