import { create } from '@bufbuild/protobuf';
import { FeatureValueSchema } from './gen/recsys/common/v1/common_pb.js';
import { featureValue } from './feature-values.js';

describe('featureValue', () => {
  it('reads categorical, numeric and multi-valued features, and leaves vectors and unset values out', () => {
    expect(featureValue(create(FeatureValueSchema, { kind: { case: 'categorical', value: 'books' } }))).toBe('books');
    expect(featureValue(create(FeatureValueSchema, { kind: { case: 'numeric', value: 2.5 } }))).toBe(2.5);
    expect(featureValue(create(FeatureValueSchema, { kind: { case: 'multi', value: { values: ['a', 'b'] } } }))).toEqual(['a', 'b']);
    expect(featureValue(create(FeatureValueSchema, { kind: { case: 'vector', value: { values: [0.1, 0.2] } } }))).toBeUndefined();
    expect(featureValue(create(FeatureValueSchema))).toBeUndefined();
    expect(featureValue(undefined)).toBeUndefined();
  });
});
