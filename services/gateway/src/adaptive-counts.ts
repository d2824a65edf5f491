import type { AdaptiveConfig, StageName } from './config.js';
import { LatencyWindow } from './latency-window.js';

/** The candidate counts a request uses: asked of retrieval (and pre-ranked), and kept for ranking. */
export interface CandidateCounts {
  retrieve: number;
  rank: number;
}

export type CountName = keyof CandidateCounts;

/** Which count drives each stage's work: retrieval and pre-ranking handle the retrieved set, ranking and re-ranking the ranked one. */
const DRIVEN_BY: Record<StageName, CountName> = { retrieval: 'retrieve', preranking: 'retrieve', ranking: 'rank', reranking: 'rank' };

// Shrink fast when over target, grow back slowly well under it (AIMD-like), and only on fresh evidence.
const SHRINK = 0.75;
const GROW = 1.1;
const GROW_BELOW = 0.6;

export interface CountChange {
  count: CountName;
  from: number;
  to: number;
  stage: StageName;
  percentileMs: number;
}

/**
 * Candidate counts that follow load: each stage's recent latency percentile is compared with its target;
 * above it, the count that drives the stage shrinks (bounded below); well under it, the count grows back
 * (bounded above). A window is judged once it is full of calls made since the last change.
 */
export class AdaptiveCounts {
  private readonly windows: Record<StageName, LatencyWindow>;
  private readonly counts: CandidateCounts;

  constructor(
    private readonly config: AdaptiveConfig,
    private readonly onChange: (change: CountChange) => void = () => undefined,
  ) {
    const window = () => new LatencyWindow(Math.max(10, config.window));
    this.windows = { retrieval: window(), preranking: window(), ranking: window(), reranking: window() };
    this.counts = { retrieve: config.retrieveMax, rank: config.rankMax };
  }

  current(): CandidateCounts {
    return { ...this.counts };
  }

  /** One call's latency (a timed-out call counts with the time it was given: it was at least that slow). */
  observe(stage: StageName, ms: number): void {
    if (!this.config.enabled) return;
    const window = this.windows[stage];
    window.add(ms);
    if (window.count < window.size) return;
    const p = window.percentile(this.config.percentile);
    const target = this.config.targetMs[stage];
    const name = DRIVEN_BY[stage];
    const [min, max] =
      name === 'retrieve' ? [this.config.retrieveMin, this.config.retrieveMax] : [this.config.rankMin, this.config.rankMax];
    const from = this.counts[name];
    let to = from;
    if (p > target) to = Math.max(min, Math.floor(from * SHRINK));
    else if (p < GROW_BELOW * target) to = Math.min(max, Math.ceil(from * GROW));
    window.clear();
    if (to === from) return;
    this.counts[name] = to;
    // Ranking never takes more than retrieval hands over.
    if (this.counts.rank > this.counts.retrieve) this.counts.rank = Math.max(this.config.rankMin, this.counts.retrieve);
    // Latencies measured at the old count say nothing about the new one.
    for (const stage of Object.keys(DRIVEN_BY) as StageName[]) if (DRIVEN_BY[stage] === name) this.windows[stage].clear();
    this.onChange({ count: name, from, to, stage, percentileMs: p });
  }
}
