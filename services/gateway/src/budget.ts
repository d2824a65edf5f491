import { STAGE_NAMES, type BudgetConfig, type StageName } from './config.js';

/** The request's budget in ms: its own when set, clamped to the configured bounds, else the default. */
export function requestBudgetMs(requested: number, config: BudgetConfig): number {
  if (requested <= 0) return config.defaultMs;
  return Math.min(config.maxMs, Math.max(config.minMs, requested));
}

/**
 * One request's deadline and how it is split: a stage may use its share of what is left, over the shares
 * of the stages still to run, so time a fast stage did not use passes to the later ones.
 */
export class RequestBudget {
  readonly deadlineMs: number;

  constructor(
    readonly totalMs: number,
    private readonly config: BudgetConfig,
    readonly startedMs: number,
    /** The caller's own deadline (a gRPC caller's), when earlier than the budget. */
    callerDeadlineMs = Infinity,
    private readonly now: () => number = Date.now,
    /**
     * The process's event-loop lag now, ms: kept back with `reserveMs`, because the answer waits about that long
     * for the loop after the last stage returns, before it is written. Under load this is what an answer cut at
     * its deadline overran the budget by.
     */
    private readonly lagMs: () => number = () => 0,
  ) {
    this.deadlineMs = Math.min(startedMs + totalMs, callerDeadlineMs);
  }

  remainingMs(): number {
    return this.deadlineMs - this.config.reserveMs - this.lagMs() - this.now();
  }

  /** The time this stage may take: its share of what is left over the stages from it to the end; 0 when none is left. */
  stageTimeoutMs(stage: StageName): number {
    const remaining = this.remainingMs();
    if (remaining <= 0) return 0;
    // STAGE_NAMES is the order a request runs the stages in.
    const from = STAGE_NAMES.indexOf(stage);
    let total = 0;
    for (let i = from; i < STAGE_NAMES.length; i++) total += this.config.shares[STAGE_NAMES[i]!];
    return Math.floor((remaining * this.config.shares[stage]) / total);
  }

  /** Whether the stage has enough time to be worth calling. */
  affords(timeoutMs: number): boolean {
    return timeoutMs >= this.config.minStageMs;
  }
}
