import { scratchOf } from './scratch.js';

describe('scratchOf', () => {
  it('keeps an array long enough and replaces a short one with a longer one of its type', () => {
    const rows = new Int32Array(8);
    expect(scratchOf(rows, 8)).toBe(rows);
    expect(scratchOf(rows, 0)).toBe(rows);
    const doubled = scratchOf(rows, 9);
    expect(doubled).toBeInstanceOf(Int32Array);
    expect(doubled.length).toBe(16);
    const wide = scratchOf(new Uint32Array(0), 300);
    expect(wide).toBeInstanceOf(Uint32Array);
    expect(wide.length).toBe(300);
  });
});
