import {
  USER_HISTORY,
  USER_HISTORY_ALL,
  buildTrainingSetup,
  fittedHistories,
  generateSynthetic,
  userStateContext,
  validationMask,
} from '@recsys/data';
import { prepareSetup } from './data-source.js';

describe('prepareSetup with a validation slice', () => {
  // A time split: the validation slice is the latest 10% of train.
  const base = buildTrainingSetup(generateSynthetic({ seed: 3, users: 60, items: 50, interactionsPerUser: 20 }));
  const LENGTH = 8;
  const { setup, fit } = prepareSetup(base, { history: { tower: LENGTH, ranking: LENGTH, rankingItems: 'all' }, validation: true });
  const { interactions, items } = setup.dataset;
  const state = userStateContext(setup, 0).columns;

  it('evaluates on the real test rows with the split restored, fitted rows marked', () => {
    expect(Array.from(setup.split)).toEqual(Array.from(base.split));
    const held = validationMask(base);
    expect(held.some((m) => m === 1)).toBe(true);
    for (let r = 0; r < setup.split.length; r++) expect(setup.fittedRows![r]).toBe(base.split[r] === 1 && held[r] === 0 ? 1 : 0);
  });

  it("gives the user tower and DLRM the same test-time history: the user's fitted rows, never the validation slice", () => {
    // The user tower embeds each user with userStateContext; DLRM reads the per-row columns of each test row.
    let compared = 0;
    for (const [column, positives] of [
      [USER_HISTORY, true],
      [USER_HISTORY_ALL, false],
    ] as const) {
      const perUser = state[column]!.values as string[][];
      expect(perUser).toEqual(fittedHistories(fit, positives));
      const perRow = interactions.context[column]!.values as string[][];
      for (let r = 0; r < interactions.length; r++) {
        if (setup.split[r] !== 0) continue;
        const target = items.ids[interactions.item[r]!]!;
        const expected = perUser[interactions.user[r]!]!.filter((id) => id !== target).slice(0, LENGTH);
        expect(perRow[r]).toEqual(expected);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('differs from a history over all of train, so the check above can fail', () => {
    const allTrain = fittedHistories({ ...setup, fittedRows: undefined }, false);
    expect(allTrain).not.toEqual(state[USER_HISTORY_ALL]!.values);
  });
});
