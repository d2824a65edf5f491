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

/**
 * Old-space bytes allocated while one allocation site's objects die young (steady traffic), right after a phase in which
 * that site's objects survived scavenges (a burst of long requests), in MiB.
 */
function oldSpaceAfterBurst(flags: readonly string[]): number {
  const code = `
    const v8 = require('node:v8');
    const old = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size;
    function make(i) { return { id: i, name: 'item-' + i, score: i * 0.5, tags: [i, i + 1] }; }
    let kept = [];
    for (let i = 0; i < 3e6; i++) { kept.push(make(i)); if (kept.length > 300000) kept = kept.slice(150000); }
    kept = null;
    const ring = new Array(64);
    let last = old(), added = 0;
    for (let i = 0; i < 4e6; i++) {
      ring[i & 63] = make(i);
      if (i % 10000 === 0) { const now = old(); if (now > last) added += now - last; last = now; }
    }
    console.log(added / 2 ** 20);
  `;
  // --predictable: single-threaded GC and compilation, so that when V8 decides to tenure does not hang on timing (without
  // it the control ranged 4–560 MiB between runs on a loaded machine; with it, 23.3 MiB every time).
  const out = execFileSync(process.execPath, [...flags, '--predictable', '-e', code], { encoding: 'utf8' });
  return Number(out.trim().split('\n').at(-1));
}

describe('the serving processes V8 flags', () => {
  it('keep short-lived objects out of the old generation after a burst in which the same code made long-lived ones', () => {
    // Measured: 0–0.1 MiB with the flags, 23.3 MiB without the pretenuring flag (V8 tenures the site in the burst).
    expect(oldSpaceAfterBurst(SERVING_NODE_FLAGS)).toBeLessThan(5);
    const pretenuring = SERVING_NODE_FLAGS.filter((flag) => flag !== '--no-allocation-site-pretenuring');
    expect(oldSpaceAfterBurst(pretenuring)).toBeGreaterThan(15);
  });

  it('pin the young generation: 16 to 32 MiB of new space (one semi-space, then both), where V8 alone grows it past 32', () => {
    expect(newSpaceRange(SERVING_NODE_FLAGS)).toEqual({ min: 16, max: 32 });
    // The control: the same load under V8's own sizing starts the new space smaller and grows it further.
    const own = newSpaceRange([]);
    expect(own.min).toBeLessThan(16);
    expect(own.max).toBeGreaterThan(32);
  });
});
