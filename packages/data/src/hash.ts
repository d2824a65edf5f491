// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { imul } = Math;

/** FNV-1a (32-bit) over the UTF-8 bytes of `value`, as an unsigned bucket in [0, buckets). */
export function hashBucket(value: string, buckets: number): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < value.length; k++) {
    let c = value.charCodeAt(k);
    if (c < 0x80) {
      h = imul(h ^ c, 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c < 0xdc00 && k + 1 < value.length) {
      const low = value.charCodeAt(k + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        k++;
      }
    }
    // A lone surrogate encodes as U+FFFD, as TextEncoder does.
    if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
    if (c < 0x800) {
      h = imul(h ^ (0xc0 | (c >> 6)), 0x01000193);
    } else if (c < 0x10000) {
      h = imul(h ^ (0xe0 | (c >> 12)), 0x01000193);
      h = imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    } else {
      h = imul(h ^ (0xf0 | (c >> 18)), 0x01000193);
      h = imul(h ^ (0x80 | ((c >> 12) & 0x3f)), 0x01000193);
      h = imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    }
    h = imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
  }
  return (h >>> 0) % buckets;
}

/** The ML-100K protocol bucket: (u * 2654435761 + i * 40503) mod 2^32, mod 10. */
export function protocolBucket(user: number, item: number): number {
  return protocolHash(user, item) % 10;
}

/** The ML-100K protocol hash h = (u * 2654435761 + i * 40503) mod 2^32. */
export function protocolHash(user: number, item: number): number {
  // imul wraps each product mod 2^32; the sum of two int32s is exact in a double, and >>> 0 reduces it mod 2^32.
  return (imul(user, 2654435761) + imul(item, 40503)) >>> 0;
}

/** The protocol's validation slice of train: (h div 10) mod 10 == 0 (about 10% of the train pairs). */
export function protocolIsValidation(user: number, item: number): boolean {
  return Math.floor(protocolHash(user, item) / 10) % 10 === 0;
}

/** Train iff the protocol bucket is below 8 (about 80%). */
export function protocolIsTrain(user: number, item: number): boolean {
  return protocolBucket(user, item) < 8;
}
