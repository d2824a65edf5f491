/**
 * Forward-decayed popularity (Cormode, Shkapenyuk, Srivastava, Xu: "Forward Decay", ICDE 2009),
 * shared by the Redis and the in-memory store so both compute the same scores.
 *
 * An event of weight w at time t contributes w * 2^((t - L) / halfLife) with a fixed landmark L;
 * the score as of `now` is the sum divided by 2^((now - L) / halfLife). Each item's sum only ever
 * grows, so nothing is rewritten as time passes, and the order of items does not depend on `now`.
 *
 * Sums are kept as base-2 logarithms, log2(sum), because the raw sum overflows a double after
 * about 1000 half-lives past L (2^1024): with a one-hour half-life that is six weeks after L.
 * A log-sum stays near (t - L) / halfLife, so a double holds it for any realistic clock; its
 * absolute precision (about 2^-52 * |log-sum|) bounds the relative error of a score, e.g. ~1e-11
 * for a one-hour half-life in 2030, ~1e-5 for an (absurd) one-millisecond half-life.
 */

/** The landmark L: any fixed instant works; a recent one keeps log-sums small. */
export const POPULARITY_LANDMARK_MS = Date.UTC(2025, 0, 1);

/** Events claiming to be further ahead than this are counted as if they happened this far ahead. */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * log2 of an event's forward-decayed weight, w * 2^((t - L) / halfLife); undefined when the
 * event adds nothing (a weight that is not positive). Absurd future timestamps are clamped to
 * `nowMs` + 1 day so one bad clock cannot pin an item to the top for years.
 */
export function logDecayedWeight(weight: number, timestampMs: number, halfLifeMs: number, nowMs: number): number | undefined {
  if (!(weight > 0) || !Number.isFinite(weight)) return undefined;
  const t = Math.min(timestampMs, nowMs + MAX_FUTURE_SKEW_MS);
  return Math.log2(weight) + (t - POPULARITY_LANDMARK_MS) / halfLifeMs;
}

/** log2(2^a + 2^b), computed without leaving the log domain (see ADD_LOG_SCORES_LUA). */
export function addLogScores(a: number, b: number): number {
  const hi = a >= b ? a : b;
  const lo = a >= b ? b : a;
  // Written as in the Lua twin, operation for operation, so both stores round alike.
  return hi + Math.log(1 + 2 ** (lo - hi)) / Math.LN2;
}

/** The Lua twin of addLogScores, for the Redis script; keep the two in step. */
export const ADD_LOG_SCORES_LUA = `
local LN2 = math.log(2)
local function add_log_scores(a, b)
  local hi, lo = a, b
  if b > a then hi, lo = b, a end
  return hi + math.log(1 + 2 ^ (lo - hi)) / LN2
end
`;

/** The decayed score as of `nowMs` of an item whose log-sum is `logScore`. */
export function scoreAt(logScore: number, nowMs: number, halfLifeMs: number): number {
  return 2 ** (logScore - (nowMs - POPULARITY_LANDMARK_MS) / halfLifeMs);
}

/** Best first; ties in reverse byte order of the id, as Redis ZREVRANGE orders them. */
export function byPopularity(a: { itemId: string; logScore: number }, b: { itemId: string; logScore: number }): number {
  return b.logScore - a.logScore || Buffer.compare(Buffer.from(b.itemId, 'utf8'), Buffer.from(a.itemId, 'utf8'));
}
