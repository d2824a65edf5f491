import { execFileSync } from 'node:child_process';
import { ALL_IN_ONE_NODE_FLAGS, SERVING_NODE_FLAGS } from './node-flags.js';

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

/**
 * The most old space in use during steady allocation after a burst: first ~120 MiB held and let go (an overload), then
 * objects that each live a while (a request's) so that some are promoted and die in the old generation.
 */
function oldSpaceAfterBurst(flags: readonly string[]): { burst: number; max: number; live: number } {
  const code = `
    const v8 = require('node:v8');
    const old = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size / 2 ** 20;
    let burst = [];
    for (let i = 0; i < 1.2e6; i++) burst.push({ i, text: 'burst-' + i, more: [i, i + 1] });
    const held = old();
    burst = null;
    const ring = new Array(100000);
    let max = 0;
    const n = 8e6;
    for (let i = 0; i < n; i++) {
      ring[i % ring.length] = { i, text: 'steady-' + i };
      if (i > n / 2 && i % 20000 === 0) max = Math.max(max, old());
    }
    ring.fill(undefined);
    globalThis.gc();
    console.log(JSON.stringify({ burst: Math.round(held), max: Math.round(max), live: Math.round(old()) }));
  `;
  const out = execFileSync(process.execPath, [...flags, '--expose-gc', '-e', code], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { burst: number; max: number; live: number };
}

/**
 * V8 reports the new space a page or two (256 KiB each) past its semi-spaces now and then, while a scavenge is under
 * way: 32.5 MiB was seen once in a fresh-clone CI run on a loaded machine, 32 in every run before.
 */
const PAGE_SLACK_MIB = 1;

/** The new space pinned: exactly `min` at its smallest, `max` (within a page or two) at its largest. */
function expectNewSpace(range: { min: number; max: number }, min: number, max: number): void {
  expect(range.min).toBe(min);
  expect(range.max).toBeGreaterThanOrEqual(max);
  expect(range.max).toBeLessThanOrEqual(max + PAGE_SLACK_MIB);
}

describe('the serving processes V8 flags', () => {
  it('pin the young generation: 16 to 32 MiB of new space (one semi-space, then both), where V8 alone grows it past 32', () => {
    expectNewSpace(newSpaceRange(SERVING_NODE_FLAGS), 16, 32);
    // The control: the same load under V8's own sizing starts the new space smaller and grows it further.
    const own = newSpaceRange([]);
    expect(own.min).toBeLessThan(16);
    expect(own.max).toBeGreaterThan(32 + PAGE_SLACK_MIB);
  });

  it("pin the all-in-one process's young generation at 64 to 128 MiB, with the same old-generation factor", () => {
    expectNewSpace(newSpaceRange(ALL_IN_ONE_NODE_FLAGS), 64, 128);
    expect(ALL_IN_ONE_NODE_FLAGS).toContain('--heap-growing-percent=50');
  });

  it('keep the old generation within 1.5 times what it held before it collects', () => {
    expect(SERVING_NODE_FLAGS).toContain('--heap-growing-percent=50');
    // The burst held ~160 MiB; the steady load holds a few. With the factor fixed, V8 collects at the latest when the
    // old space reaches 1.5 times what the burst's last collection kept (plus a step of a few MiB), often much sooner
    // (1.7 times the burst at most in runs here, 0.25 times in most). Left to V8, the same program filled it to 1.7
    // times in some runs and 3.6-3.8 times in others: its factor follows the rates it measures, so no control is
    // asserted here; the soak in test:resilience is where the difference shows.
    const served = oldSpaceAfterBurst(SERVING_NODE_FLAGS);
    expect(served.burst).toBeGreaterThan(100);
    expect(served.live).toBeLessThan(20);
    expect(served.max).toBeLessThan(2 * served.burst);
  });
});
