import type { FeatureValue } from './gen/recsys/common/v1/common_pb.js';

/**
 * A stored feature value as the models and the dataset files read it: categorical text, a number, or several
 * categorical values. Dense vectors (and an unset value) give undefined: no model input or dataset column reads them.
 */
export function featureValue(value: FeatureValue | undefined): string | number | string[] | undefined {
  switch (value?.kind.case) {
    case 'categorical':
      return value.kind.value;
    case 'numeric':
      return value.kind.value;
    case 'multi':
      return value.kind.value.values;
    default:
      return undefined;
  }
}
