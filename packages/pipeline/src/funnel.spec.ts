import { buildTrainingSetup, generateSynthetic } from '@recsys/data';
import { heldOutUsers, monotone, percentile, renderFunnelHtml, stageHits, summariseSetting, type UserOutcome } from './funnel.js';

describe('funnel arithmetic', () => {
  it('counts positives per stage list, each id once', () => {
    const positives = new Set(['a', 'b', 'c']);
    const hits = stageHits({ retrieval: ['a', 'b', 'x', 'a'], preranking: ['b', 'a'], ranking: ['b'], final: [] }, positives);
    expect(hits).toEqual({ retrieval: 2, preranking: 2, ranking: 1, final: 0 });
    expect(monotone(hits)).toBe(true);
    expect(monotone({ retrieval: 1, preranking: 1, ranking: 0, final: 1 })).toBe(false);
  });

  it('averages each user share of positives, and takes nearest-rank percentiles', () => {
    const outcome = (positives: number, r: number, p: number, k: number, f: number): UserOutcome => ({
      userId: 'u',
      positives,
      hits: { retrieval: r, preranking: p, ranking: k, final: f },
      sizes: { retrieval: 100, preranking: 50, ranking: 20, final: 10 },
      degraded: false,
    });
    const latency = [10, 20, 30, 40].map((ms) => ({ clientMs: ms, gatewayMs: ms - 1, stageMs: { retrieval: 2 }, degraded: ms === 40 }));
    const s = summariseSetting(
      { retrieved: 100, preRanked: 50, ranked: 20 },
      10,
      [outcome(2, 2, 1, 1, 0), outcome(4, 4, 4, 2, 1)],
      latency,
      false,
    );
    expect(s).toMatchObject({ recall_retrieval: 1, recall_preranking: 0.75, recall_ranking: 0.5, recall_final: 0.125 });
    expect(s).toMatchObject({ p50_ms: 20, p95_ms: 40, p99_ms: 40, gateway_p50_ms: 19, degraded_share: 0.1667, non_monotone_users: 0 });
    expect(percentile([], 50)).toBeNaN();
  });

  it('takes held-out positives from the test split, leaving out what the user had in train', () => {
    const setup = buildTrainingSetup(generateSynthetic({ seed: 3, users: 60, items: 40, interactionsPerUser: 12 }));
    const users = heldOutUsers(setup, 1000);
    expect(users.length).toBeGreaterThan(0);
    const { interactions, users: table, items } = setup.dataset;
    for (const user of users) {
      const u = table.ids.indexOf(user.userId);
      for (let r = 0; r < interactions.length; r++) {
        if (interactions.user[r] !== u) continue;
        const id = items.ids[interactions.item[r]!]!;
        if (setup.split[r] === 1) expect(user.positives.has(id)).toBe(false);
      }
    }
    const sampled = heldOutUsers(setup, 5);
    expect(sampled).toHaveLength(5);
    expect(new Set(sampled.map((u) => u.userId)).size).toBe(5);
  });

  it('renders a page with the three curves', () => {
    const setting = summariseSetting({ retrieved: 10, preRanked: 5, ranked: 2 }, 2, [], [], true);
    const html = renderFunnelHtml({
      generated_at: 'now',
      gateway: { address: '127.0.0.1:1', started_here: false },
      models: { dir: '<m>', version: '1' },
      data: 'synthetic',
      k: 2,
      budget_ms: 100,
      users: 0,
      held_out_positives: 0,
      recall: 'r',
      settings: [setting],
    });
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).toContain('10/5/2 (default)');
    expect(html).toContain('&lt;m&gt;');
  });
});
