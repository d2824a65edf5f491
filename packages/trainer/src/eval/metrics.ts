// Offline evaluation metrics: plain functions over (typed) arrays, no dependencies.
//
// Binary metrics take labels that are exactly 0 or 1 (anything else throws). Sorting is always done on
// Float64Array copies split by class, so the work is the engine's native numeric sort: no comparator
// callbacks, no index permutations (AUC on 1M examples takes a few tens of milliseconds).

export interface RocCurve {
  /** False positive rate per point, non-decreasing, from 0 to 1. */
  fpr: number[];
  /** True positive rate per point, non-decreasing, from 0 to 1. */
  tpr: number[];
  /** Score threshold of each point (predict positive when score >= threshold); the first is +Infinity. */
  thresholds: number[];
}

export interface ClassificationMetrics {
  f1: number;
  precision: number;
  recall: number;
  threshold: number;
}

/** The scores of each class, sorted ascending; NaN scores are left out and counted apart. */
interface SplitScores {
  pos: Float64Array;
  neg: Float64Array;
  /** Positives and negatives including those with a NaN score. */
  nPos: number;
  nNeg: number;
  nanScores: number;
}

function checkLengths(labels: ArrayLike<number>, values: ArrayLike<number>, what: string): void {
  if (labels.length !== values.length) {
    throw new RangeError(`labels and ${what} differ in length: ${labels.length} != ${values.length}`);
  }
}

function countPositives(labels: ArrayLike<number>): number {
  let nPos = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y === 1) nPos++;
    else if (y !== 0) throw new RangeError(`labels must be 0 or 1, got ${y} at index ${i}`);
  }
  return nPos;
}

/** Length of the prefix before the first NaN (a sorted typed array keeps its NaNs at the end). */
function finitePrefix(sorted: Float64Array): number {
  let end = sorted.length;
  while (end > 0 && Number.isNaN(sorted[end - 1]!)) end--;
  return end;
}

function splitByLabel(labels: ArrayLike<number>, scores: ArrayLike<number>): SplitScores {
  checkLengths(labels, scores, 'scores');
  const nPos = countPositives(labels);
  const nNeg = labels.length - nPos;
  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  let p = 0;
  let q = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === 1) pos[p++] = scores[i]!;
    else neg[q++] = scores[i]!;
  }
  pos.sort();
  neg.sort();
  const posEnd = finitePrefix(pos);
  const negEnd = finitePrefix(neg);
  return {
    pos: posEnd === nPos ? pos : pos.subarray(0, posEnd),
    neg: negEnd === nNeg ? neg : neg.subarray(0, negEnd),
    nPos,
    nNeg,
    nanScores: nPos - posEnd + (nNeg - negEnd),
  };
}

/** First index i with sorted[i] >= value (sorted.length when none). */
function lowerBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Exact ROC AUC: the Mann–Whitney U statistic over all (positive, negative) pairs, a tie counting one half,
 * divided by nPos × nNeg. Equals sklearn's roc_auc_score. NaN when a class is absent or any score is NaN.
 */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const { pos, neg, nPos, nNeg, nanScores } = splitByLabel(labels, scores);
  if (nPos === 0 || nNeg === 0 || nanScores > 0) return NaN;
  // U = Σ over positives of (#negatives below + ½ #negatives equal). Every term is a multiple of ½ and the
  // total is at most nPos·nNeg, so the sum is exact in doubles for any realistic size.
  let u = 0;
  let below = 0; // negatives strictly below the current positive score
  let i = 0;
  while (i < nPos) {
    const v = pos[i]!;
    let run = 1;
    while (i + run < nPos && pos[i + run] === v) run++;
    while (below < nNeg && neg[below]! < v) below++;
    let equal = 0;
    while (below + equal < nNeg && neg[below + equal] === v) equal++;
    u += run * (below + equal / 2);
    i += run;
  }
  return u / (nPos * nNeg);
}

/**
 * Exact ROC curve: one point per distinct score (tied scores collapse into one step), starting at (0,0) with
 * threshold +Infinity and ending at (1,1). When it has more than maxPoints points, collinear points are
 * dropped (lossless) and then points are picked evenly along the curve's length, keeping both ends.
 * Undefined (empty arrays) when a class is absent or any score is NaN.
 */
export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>, maxPoints = 201): RocCurve {
  if (!(maxPoints >= 2)) throw new RangeError(`maxPoints must be at least 2, got ${maxPoints}`);
  const { pos, neg, nPos, nNeg, nanScores } = splitByLabel(labels, scores);
  if (nPos === 0 || nNeg === 0 || nanScores > 0) return { fpr: [], tpr: [], thresholds: [] };

  // Sweep the distinct scores from the highest down, counting true and false positives at score >= v.
  const cap = nPos + nNeg + 1;
  const tps = new Float64Array(cap);
  const fps = new Float64Array(cap);
  const thr = new Float64Array(cap);
  thr[0] = Infinity;
  let count = 1;
  let i = nPos - 1;
  let j = nNeg - 1;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? neg[j]! : j < 0 ? pos[i]! : Math.max(pos[i]!, neg[j]!);
    while (i >= 0 && pos[i] === v) i--;
    while (j >= 0 && neg[j] === v) j--;
    tps[count] = nPos - 1 - i;
    fps[count] = nNeg - 1 - j;
    thr[count] = v;
    count++;
  }

  let keep = Array.from({ length: count }, (_, k) => k);
  if (count > maxPoints) keep = dropCollinear(fps, tps, count);
  if (keep.length > maxPoints) keep = pickAlongLength(fps, tps, nNeg, nPos, keep, maxPoints);
  return {
    fpr: keep.map((k) => fps[k]! / nNeg),
    tpr: keep.map((k) => tps[k]! / nPos),
    thresholds: keep.map((k) => thr[k]!),
  };
}

/** Indices of the points that are not on the segment between their kept neighbours (counts are exact integers). */
function dropCollinear(fps: Float64Array, tps: Float64Array, count: number): number[] {
  const keep = [0];
  for (let k = 1; k < count - 1; k++) {
    const a = keep[keep.length - 1]!;
    const cross = (fps[k]! - fps[a]!) * (tps[k + 1]! - tps[k]!) - (tps[k]! - tps[a]!) * (fps[k + 1]! - fps[k]!);
    if (cross !== 0) keep.push(k);
  }
  keep.push(count - 1);
  return keep;
}

/** At most maxPoints of the kept points, spread evenly over fpr + tpr (which grows from 0 to 2 along the curve). */
function pickAlongLength(fps: Float64Array, tps: Float64Array, nNeg: number, nPos: number, keep: number[], maxPoints: number): number[] {
  const picked: number[] = [keep[0]!];
  let cursor = 0;
  for (let t = 1; t < maxPoints - 1; t++) {
    const target = (2 * t) / (maxPoints - 1);
    while (cursor < keep.length - 1 && fps[keep[cursor]!]! / nNeg + tps[keep[cursor]!]! / nPos < target) cursor++;
    const k = keep[cursor]!;
    if (k !== picked[picked.length - 1]) picked.push(k);
  }
  const last = keep[keep.length - 1]!;
  if (last !== picked[picked.length - 1]) picked.push(last);
  return picked;
}

/** Binary cross-entropy: -mean(y·ln(p + eps) + (1 - y)·ln(1 - p + eps)), as the PyTorch reference computes it. */
export function logLoss(labels: ArrayLike<number>, probs: ArrayLike<number>, eps = 1e-7): number {
  checkLengths(labels, probs, 'probs');
  const n = labels.length;
  if (n === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const p = probs[i]!;
    sum += y * Math.log(p + eps) + (1 - y) * Math.log(1 - p + eps);
  }
  return -sum / n;
}

function f1Of(tp: number, fp: number, fn: number): number {
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** F1, precision and recall of predicting positive when p >= threshold (a NaN probability predicts negative). */
export function classificationAt(labels: ArrayLike<number>, probs: ArrayLike<number>, threshold: number): ClassificationMetrics {
  checkLengths(labels, probs, 'probs');
  countPositives(labels);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predicted = probs[i]! >= threshold;
    if (labels[i] === 1) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
  }
  return {
    f1: f1Of(tp, fp, fn),
    precision: tp + fp === 0 ? 0 : tp / (tp + fp),
    recall: tp + fn === 0 ? 0 : tp / (tp + fn),
    threshold,
  };
}

/** numpy.linspace(start, stop, num): start + i·step, the last point exactly stop. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (!Number.isInteger(num) || num < 0) throw new RangeError(`num must be a non-negative integer, got ${num}`);
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** The default grid of bestF1Threshold: linspace(0.05, 0.95, 91). */
export const F1_THRESHOLD_GRID: readonly number[] = Object.freeze(linspace(0.05, 0.95, 91));

/**
 * The first grid threshold with the strictly greatest F1 (iterating the grid in its order and replacing the
 * best only on strict improvement, as the reference does). Sorts once: O(n log n + grid · log n).
 */
export function bestF1Threshold(labels: ArrayLike<number>, probs: ArrayLike<number>, grid: readonly number[] = F1_THRESHOLD_GRID): number {
  if (grid.length === 0) throw new RangeError('the threshold grid is empty');
  const { pos, neg, nPos } = splitByLabel(labels, probs);
  let best = grid[0]!;
  let bestF1 = -Infinity;
  for (const t of grid) {
    const tp = pos.length - lowerBound(pos, t);
    const fp = neg.length - lowerBound(neg, t);
    const f1 = f1Of(tp, fp, nPos - tp);
    if (f1 > bestF1) {
      bestF1 = f1;
      best = t;
    }
  }
  return best;
}

function isSet(x: ReadonlySet<number> | ArrayLike<number>): x is ReadonlySet<number> {
  return typeof (x as ReadonlySet<number>).has === 'function';
}

/**
 * Indices of the k highest scores, best first, ties broken by the lower index. Excluded indices and NaN
 * scores are never returned; fewer than k come back when fewer remain. O(n log k): a min-heap of size k, and
 * the exclusion is only consulted for the few candidates that would enter the heap.
 */
export function topK(scores: ArrayLike<number>, k: number, exclude?: ArrayLike<number> | ReadonlySet<number>): Int32Array {
  const n = scores.length;
  const size = Math.max(0, Math.min(Math.floor(k), n));
  if (size === 0) return new Int32Array(0);
  const excluded: ReadonlySet<number> | undefined =
    exclude === undefined ? undefined : isSet(exclude) ? exclude : new Set(Array.from(exclude));
  const hasExcluded = excluded !== undefined && excluded.size > 0;

  // Min-heap on (score, -index): the root is the worst kept candidate (lowest score, then highest index).
  const hs = new Float64Array(size);
  const hi = new Int32Array(size);
  let len = 0;
  const worse = (a: number, b: number): boolean => hs[a]! < hs[b]! || (hs[a] === hs[b] && hi[a]! > hi[b]!);
  const swap = (a: number, b: number): void => {
    const s = hs[a]!;
    hs[a] = hs[b]!;
    hs[b] = s;
    const x = hi[a]!;
    hi[a] = hi[b]!;
    hi[b] = x;
  };
  const siftDown = (start: number, end: number): void => {
    let p = start;
    for (;;) {
      const l = 2 * p + 1;
      if (l >= end) return;
      const r = l + 1;
      const c = r < end && worse(r, l) ? r : l;
      if (!worse(c, p)) return;
      swap(c, p);
      p = c;
    }
  };

  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (s !== s) continue; // NaN
    // Indices grow, so a later candidate equal to the root loses the tie: it must be strictly better.
    if (len === size && !(s > hs[0]!)) continue;
    if (hasExcluded && excluded.has(i)) continue;
    if (len < size) {
      let c = len++;
      hs[c] = s;
      hi[c] = i;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(c, p)) break;
        swap(c, p);
        c = p;
      }
    } else {
      hs[0] = s;
      hi[0] = i;
      siftDown(0, len);
    }
  }

  // Heap sort in place: repeatedly move the worst to the end, which leaves the best first.
  for (let end = len - 1; end > 0; end--) {
    swap(0, end);
    siftDown(0, end);
  }
  return len === size ? hi : hi.slice(0, len);
}

type Truth = ReadonlySet<number> | ArrayLike<number>;

/**
 * Calls visit(hitsAt, denominatorOf) for each user with a non-empty truth, where hitsAt[r] is the number of
 * distinct truth items among the first r + 1 ranked items (r < maxK).
 */
function forEachUserHits(
  ranked: readonly Int32Array[],
  truth: ReadonlyArray<Truth>,
  maxK: number,
  visit: (hitsAt: Int32Array, truthSize: number) => void,
): void {
  if (ranked.length !== truth.length) throw new RangeError(`ranked and truth differ in length: ${ranked.length} != ${truth.length}`);
  const hitsAt = new Int32Array(maxK);
  for (let u = 0; u < truth.length; u++) {
    const t = truth[u]!;
    const relevant = isSet(t) ? t : new Set(Array.from(t));
    if (relevant.size === 0) continue;
    const list = ranked[u]!;
    const depth = Math.min(list.length, maxK);
    let found: Set<number> | undefined;
    let hits = 0;
    for (let r = 0; r < maxK; r++) {
      if (r < depth) {
        const item = list[r]!;
        if (relevant.has(item) && (hits === 0 || !found!.has(item))) {
          (found ??= new Set()).add(item);
          hits++;
        }
      }
      hitsAt[r] = hits;
    }
    visit(hitsAt, relevant.size);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
}

/**
 * Recall@k per k: for each user with a non-empty truth, |top-k of ranked[u] ∩ truth[u]| / min(|truth[u]|, k),
 * averaged over those users (NaN when there are none). Users with an empty truth are skipped.
 */
export function recallAtK(ranked: readonly Int32Array[], truth: ReadonlyArray<Truth>, ks: readonly number[]): Map<number, number> {
  ks.forEach(checkK);
  const maxK = ks.length === 0 ? 0 : Math.max(...ks);
  const sums = new Float64Array(ks.length);
  let users = 0;
  forEachUserHits(ranked, truth, maxK, (hitsAt, truthSize) => {
    users++;
    ks.forEach((k, i) => (sums[i] += hitsAt[k - 1]! / Math.min(truthSize, k)));
  });
  return new Map(ks.map((k, i) => [k, users === 0 ? NaN : sums[i]! / users]));
}

/** Recall@k for k = 1..maxK (index 0 is k = 1), in one pass per user: O(users × maxK). */
export function recallCurve(ranked: readonly Int32Array[], truth: ReadonlyArray<Truth>, maxK = 100): number[] {
  checkK(maxK);
  const sums = new Float64Array(maxK);
  let users = 0;
  forEachUserHits(ranked, truth, maxK, (hitsAt, truthSize) => {
    users++;
    for (let r = 0; r < maxK; r++) sums[r] += hitsAt[r]! / Math.min(truthSize, r + 1);
  });
  return Array.from(sums, (s) => (users === 0 ? NaN : s / users));
}
