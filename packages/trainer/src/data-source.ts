import {
  type SetupOptions,
  type SyntheticOptions,
  type TrainingSetup,
  buildTrainingSetup,
  generateSynthetic,
  loadDatasetFiles,
  ml100kProtocol,
} from '@recsys/data';
import { resolve } from 'node:path';

/** Where a training run's data comes from: recorded in every manifest, so `recsys evaluate` can rebuild it. */
export type DataSource =
  | { kind: 'ml100k'; dir: string }
  | { kind: 'synthetic'; options: SyntheticOptions; setup?: SetupOptions }
  | { kind: 'files'; dir: string; positiveThreshold?: number; setup?: SetupOptions };

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
