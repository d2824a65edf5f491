/**
 * A scratch array of at least `n` entries: `array` itself when it holds that many, else a new one of its type, at least
 * twice as long (its contents are not kept). For arrays a caller keeps between synchronous calls, so that a request
 * allocates none.
 */
export function scratchOf<T extends Int32Array | Uint32Array>(array: T, n: number): T {
  if (array.length >= n) return array;
  return new (array.constructor as new (length: number) => T)(Math.max(n, 2 * array.length));
}
