import { create } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';

/**
 * A compact binary form of one history entry, used by both stores so they round values alike:
 *   [0]      format version (1)
 *   [1..4]   event type, int32 LE
 *   [5..12]  timestamp ms, int64 LE
 *   [13..16] dwell seconds, float32 LE (the proto field is a float)
 *   [17..]   item id, UTF-8
 * Decoding it is a few reads, far cheaper than a reflective protobuf parse per entry.
 */
const VERSION = 1;
const HEADER_BYTES = 17;

export function encodeHistoryEntry(itemId: string, timestampMs: bigint, dwellSeconds: number, eventType: number): Buffer {
  const id = Buffer.from(itemId, 'utf8');
  const out = Buffer.allocUnsafe(HEADER_BYTES + id.length);
  out.writeUInt8(VERSION, 0);
  out.writeInt32LE(eventType | 0, 1);
  out.writeBigInt64LE(BigInt.asIntN(64, timestampMs), 5);
  out.writeFloatLE(dwellSeconds, 13);
  id.copy(out, HEADER_BYTES);
  return out;
}

/** Undefined for bytes in a format this version does not know (written by a newer release). */
export function decodeHistoryEntry(bytes: Uint8Array): features.HistoryEntry | undefined {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER_BYTES || buf.readUInt8(0) !== VERSION) return undefined;
  return create(features.HistoryEntrySchema, {
    itemId: buf.toString('utf8', HEADER_BYTES),
    timestampMs: buf.readBigInt64LE(5),
    dwellSeconds: buf.readFloatLE(13),
    eventType: buf.readInt32LE(1),
  });
}

/** Decodes a newest-first list, skipping entries in an unknown format. */
export function decodeHistory(entries: readonly Uint8Array[]): features.HistoryEntry[] {
  const history: features.HistoryEntry[] = [];
  for (const bytes of entries) {
    const entry = decodeHistoryEntry(bytes);
    if (entry) history.push(entry);
  }
  return history;
}
