import type { BudgetConfig } from './config.js';
import { RequestBudget, requestBudgetMs } from './budget.js';

const config: BudgetConfig = {
  defaultMs: 250,
  minMs: 20,
  maxMs: 1000,
  reserveMs: 5,
  minStageMs: 3,
  shares: { retrieval: 35, preranking: 15, ranking: 35, reranking: 15 },
};

describe('request budget', () => {
  it('uses the default for 0 and clamps a requested budget to the configured bounds', () => {
    expect(requestBudgetMs(0, config)).toBe(250);
    expect(requestBudgetMs(100, config)).toBe(100);
    expect(requestBudgetMs(5, config)).toBe(20);
    expect(requestBudgetMs(60000, config)).toBe(1000);
  });

  it("gives each stage its share of what is left over the stages still to run, so a fast stage's savings pass on", () => {
    let now = 1000;
    const budget = new RequestBudget(205, config, now, Infinity, () => now);
    // 200 ms usable (5 reserved); retrieval: 35 of 100 shares.
    expect(budget.stageTimeoutMs('retrieval')).toBe(70);
    now += 10; // retrieval took 10 ms: 190 left over preranking+ranking+reranking (65 shares)
    expect(budget.stageTimeoutMs('preranking')).toBe(Math.floor((190 * 15) / 65));
    now += 5;
    expect(budget.stageTimeoutMs('ranking')).toBe(Math.floor((185 * 35) / 50));
    now += 100;
    expect(budget.stageTimeoutMs('reranking')).toBe(85); // the last stage gets everything left
    now += 90;
    expect(budget.stageTimeoutMs('reranking')).toBe(0);
    expect(budget.affords(budget.stageTimeoutMs('reranking'))).toBe(false);
  });

  it('keeps back the event-loop lag of the moment with the reserve: the answer waits about that long to be written', () => {
    const now = 1000;
    let lag = 0;
    const budget = new RequestBudget(
      250,
      config,
      now,
      Infinity,
      () => now,
      () => lag,
    );
    expect(budget.remainingMs()).toBe(245);
    lag = 40;
    expect(budget.remainingMs()).toBe(205);
    expect(budget.stageTimeoutMs('retrieval')).toBe(Math.floor((205 * 35) / 100));
    lag = 300;
    expect(budget.stageTimeoutMs('retrieval')).toBe(0);
  });

  it("never runs past the caller's own deadline", () => {
    const now = 0;
    const budget = new RequestBudget(250, config, now, 50, () => now);
    expect(budget.deadlineMs).toBe(50);
    expect(budget.remainingMs()).toBe(45);
  });
});
