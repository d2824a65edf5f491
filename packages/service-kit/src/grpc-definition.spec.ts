import { create, toBinary } from '@bufbuild/protobuf';
import { features, ranking } from '@recsys/contracts';
import { EncodedMessage } from './encoded-message.js';
import { effectiveDeadline } from './grpc-client.js';
import { clientChannelOptions, packageDefinition, protoPackageOf, serviceDefinition } from './grpc-definition.js';

describe('grpc definitions from protobuf-es descriptors', () => {
  const definition = serviceDefinition(features.FeatureService);
  const batch = definition.BatchGetItemFeatures!;

  it('keys methods by proto name with full paths', () => {
    expect(Object.keys(definition)).toEqual([
      'GetUserFeatures',
      'BatchGetItemFeatures',
      'RecordFeedback',
      'GetPopularItems',
      'UpsertUsers',
      'UpsertItems',
      'LogImpressions',
      'ReadEventLog',
      'ListUsers',
      'ScanItems',
    ]);
    expect(batch.path).toBe('/recsys.features.v1.FeatureService/BatchGetItemFeatures');
    expect(batch).toMatchObject({ requestStream: false, responseStream: false, originalName: 'batchGetItemFeatures' });
    expect(Object.keys(packageDefinition([features.FeatureService, ranking.RankingService]))).toEqual([
      'recsys.features.v1.FeatureService',
      'recsys.ranking.v1.RankingService',
    ]);
    expect(protoPackageOf(ranking.RankingService)).toBe('recsys.ranking.v1');
  });

  it('round-trips plain objects and messages through the binary format', () => {
    const bytes = batch.requestSerialize({ itemIds: ['a', 'b'] });
    expect(batch.requestDeserialize(bytes)).toMatchObject({
      $typeName: 'recsys.features.v1.BatchGetItemFeaturesRequest',
      itemIds: ['a', 'b'],
    });
  });

  it('writes pre-encoded responses as they are and refuses ones of another type', () => {
    const message = create(features.BatchGetItemFeaturesResponseSchema, { missingIds: ['x'] });
    const bytes = toBinary(features.BatchGetItemFeaturesResponseSchema, message);
    const written = batch.responseSerialize(new EncodedMessage(features.BatchGetItemFeaturesResponseSchema, bytes));
    expect([...written]).toEqual([...bytes]);
    expect(() => batch.responseSerialize(new EncodedMessage(features.GetUserFeaturesResponseSchema, bytes))).toThrow(
      'BatchGetItemFeatures answers recsys.features.v1.BatchGetItemFeaturesResponse, not recsys.features.v1.GetUserFeaturesResponse',
    );
  });
});

describe('effectiveDeadline', () => {
  it('takes the earlier of the own timeout and the caller deadline', () => {
    expect(effectiveDeadline(100, 5000, 1000)).toBe(1100);
    expect(effectiveDeadline(10000, 5000, 1000)).toBe(5000);
    expect(effectiveDeadline(undefined, 5000, 1000)).toBe(5000);
    expect(effectiveDeadline(undefined, undefined, 1000)).toBe(Infinity);
    expect(effectiveDeadline(0, Infinity, 1000)).toBe(Infinity);
  });
});

describe('clientChannelOptions', () => {
  const roundRobin = (target: string) => String(clientChannelOptions(target)['grpc.service_config'] ?? '').includes('round_robin');
  it('balances round robin over a resolved name, and keeps pick_first (wait for the reconnect) for a plain host:port', () => {
    expect(roundRobin('dns:///ranking.recsys.svc.cluster.local:15054')).toBe(true);
    expect(roundRobin('scaled:///stage')).toBe(true);
    expect(roundRobin('127.0.0.1:15054')).toBe(false);
    expect(roundRobin('localhost:15054')).toBe(false);
    expect(clientChannelOptions('127.0.0.1:1')['grpc.max_receive_message_length']).toBe(64 * 1024 * 1024);
  });

  it('reconnects to a restarted server within half a second, not after grpc-js backoff of up to 120 s (found by test:resilience)', () => {
    for (const target of ['127.0.0.1:15054', 'dns:///ranking.recsys.svc.cluster.local:15054']) {
      expect(clientChannelOptions(target)).toMatchObject({
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 500,
      });
    }
  });
});
