import { touchRows, touchSink } from './touch.js';

describe('touchRows', () => {
  it("reads the first value of each cache line of every row asked for and the row's last, skipping negative rows", () => {
    // Rows of 20 floats: 16 to a 64-byte line, so values 0 and 16 of each row, and its last (19).
    const values = Float32Array.from({ length: 5 * 20 }, (_, k) => k);
    touchRows(values, [1, -1, 3], 20);
    expect(touchSink()).toBe(20 + 36 + 39 + (60 + 76 + 79));
    // A count below the rows' length stops there.
    touchRows(values, Int32Array.from([4, 0]), 20, 1);
    expect(touchSink()).toBe(80 + 96 + 99);
  });

  it('reads one value per row of width one, of any element size', () => {
    const bytes = Uint8Array.from([5, 6, 7, 8]);
    touchRows(bytes, [3, 0, 0], 1);
    expect(touchSink()).toBe(8 + 5 + 5);
    const times = Float64Array.from([1.5, 2.5]);
    touchRows(times, [1], 1);
    expect(touchSink()).toBe(2.5);
    touchRows(times, [], 1);
    expect(touchSink()).toBe(0);
  });
});
