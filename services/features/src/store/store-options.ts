import type { FeatureStoreOptions } from './feature-store.js';

/** Throws a RangeError naming the first option a store cannot work with. */
export function validateStoreOptions(options: FeatureStoreOptions): void {
  if (!Number.isInteger(options.historyCap) || options.historyCap < 0) {
    throw new RangeError(`historyCap must be an integer >= 0, got ${options.historyCap}`);
  }
  if (!(options.popularityHalfLifeMs > 0) || !Number.isFinite(options.popularityHalfLifeMs)) {
    throw new RangeError(`popularityHalfLifeMs must be a positive number, got ${options.popularityHalfLifeMs}`);
  }
  if (!Number.isInteger(options.dedupTtlMs) || options.dedupTtlMs < 1) {
    throw new RangeError(`dedupTtlMs must be an integer >= 1, got ${options.dedupTtlMs}`);
  }
  for (const name of ['eventLogRetentionMs', 'attributionWindowMs'] as const) {
    if (!Number.isInteger(options[name]) || options[name] < 1)
      throw new RangeError(`${name} must be an integer >= 1, got ${options[name]}`);
  }
  for (const [type, weight] of Object.entries(options.eventWeights)) {
    if (weight !== undefined && !Number.isFinite(weight)) {
      throw new RangeError(`eventWeights[${type}] must be a finite number, got ${weight}`);
    }
  }
}
