import {
  holdOutValidation,
  withUserHistory,
  type SyntheticOptions,
  type TrainingSetup,
  buildTrainingSetup,
  generateSynthetic,
  loadDatasetFiles,
  ml100kProtocol,
} from '@recsys/data';
import { resolve } from 'node:path';

import type { DataSource, SetupPreparation } from '@recsys/model-format';

// Where a training run's data comes from is part of the model format (every manifest records it).
export type { DataSource, SetupPreparation } from '@recsys/model-format';

/** The demo and test default: small enough to train in seconds, with planted structure. */
export const DEFAULT_SYNTHETIC: SyntheticOptions = { seed: 42, users: 2000, items: 1000, interactionsPerUser: 40 };

export function loadSetup(source: DataSource): TrainingSetup {
  switch (source.kind) {
    case 'ml100k':
      return ml100kProtocol(resolve(source.dir), { itemSide: source.itemSide });
    case 'synthetic':
      return buildTrainingSetup(generateSynthetic(source.options), source.setup);
    case 'files':
      return buildTrainingSetup(loadDatasetFiles(resolve(source.dir), { positiveThreshold: source.positiveThreshold }), source.setup);
  }
}

export interface PreparedSetup {
  /**
   * Train rows are split 1, test rows 0: what the models are evaluated on (the validation rows count as
   * train: excluded from the candidates, read for the F1 threshold); with a validation slice, fittedRows
   * marks the rows the models were fitted on and the histories and counts were built from.
   */
  setup: TrainingSetup;
  /** Fitted rows 1, the validation slice 0, test rows 2 (never read); the same as setup without validation. */
  fit: TrainingSetup;
}

/**
 * The setup a run trains on. History columns and train counts come from the fitted rows only, so the
 * validation slice of a run that holds one out never leaks into its features.
 */
export function prepareSetup(source: DataSource | TrainingSetup, preparation: SetupPreparation = {}): PreparedSetup {
  const base = 'dataset' in source ? source : loadSetup(source);
  const held = preparation.validation ? holdOutValidation(base) : base;
  const fit = preparation.history ? withUserHistory(held, preparation.history) : held;
  if (!preparation.validation) return { setup: fit, fit };
  // Evaluated on the real test rows, with every feature built from fitted data still built from the fitted
  // rows only (PROTOCOL.md: the rows being fitted are the only ones history and counts come from): the
  // user tower's per-user history (userStateContext) reads fittedRows as DLRM's per-row columns did.
  return { setup: { ...fit, split: base.split, fittedRows: Uint8Array.from(fit.split, (s) => (s === 1 ? 1 : 0)) }, fit };
}

export function describeSource(source: DataSource): string {
  switch (source.kind) {
    case 'ml100k':
      return `MovieLens 100K (${source.dir}, PROTOCOL.md split)`;
    case 'synthetic':
      return `synthetic (seed ${source.options.seed}, ${source.options.users} users, ${source.options.items} items)`;
    case 'files':
      return `files in ${source.dir}`;
  }
}
