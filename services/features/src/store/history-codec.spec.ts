import { decodeHistory, decodeHistoryEntry, encodeHistoryEntry } from './history-codec.js';

describe('history codec', () => {
  it('round-trips an entry, with dwell rounded to float32 like the proto field', () => {
    const decoded = decodeHistoryEntry(encodeHistoryEntry('ítem/✓ 42', 1_767_225_600_123n, 1.1, 5));
    expect(decoded).toEqual(
      expect.objectContaining({ itemId: 'ítem/✓ 42', timestampMs: 1_767_225_600_123n, dwellSeconds: Math.fround(1.1), eventType: 5 }),
    );
  });

  it('skips entries in a format it does not know', () => {
    const known = encodeHistoryEntry('a', 1n, 0, 3);
    const newer = Buffer.from(known);
    newer[0] = 2;
    expect(decodeHistoryEntry(newer)).toBeUndefined();
    expect(decodeHistoryEntry(Buffer.alloc(3, 1))).toBeUndefined();
    expect(decodeHistory([newer, known]).map((e) => e.itemId)).toEqual(['a']);
  });
});
