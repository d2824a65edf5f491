import {
  type SyntheticOptions,
  type TrainingSetup,
  buildTrainingSetup,
  generateSynthetic,
  loadDatasetFiles,
  ml100kProtocol,
} from '@recsys/data';
import { resolve } from 'node:path';

import type { DataSource } from '@recsys/model-format';

// Where a training run's data comes from is part of the model format (every manifest records it).
export type { DataSource } from '@recsys/model-format';

/** The demo and test default: small enough to train in seconds, with planted structure. */
export const DEFAULT_SYNTHETIC: SyntheticOptions = { seed: 42, users: 2000, items: 1000, interactionsPerUser: 40 };

export function loadSetup(source: DataSource): TrainingSetup {
  switch (source.kind) {
    case 'ml100k':
      return ml100kProtocol(resolve(source.dir));
    case 'synthetic':
      return buildTrainingSetup(generateSynthetic(source.options), source.setup);
    case 'files':
      return buildTrainingSetup(loadDatasetFiles(resolve(source.dir), { positiveThreshold: source.positiveThreshold }), source.setup);
  }
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
