import { fromBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata, type ServiceError as GrpcServiceError } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import { CHANNEL_OPTIONS, currentRequestContext, effectiveDeadline, methodDefinition, REQUEST_ID_HEADER } from '@recsys/service-kit';
import type { FeatureReader, FeatureRow } from '@recsys/serving';
import { decodeItemRows, type ItemColumns } from './item-rows-wire.js';

/** What ranking reads from the feature service: the user (readUserState) and one batch of item rows of the model's columns. */
export interface RankingFeatures extends FeatureReader {
  itemRows(itemIds: string[], columns: ItemColumns): Promise<{ rows: FeatureRow[]; missing: string[] }>;
}

/**
 * The feature service as ranking reads it, on one channel: the user through protobuf-es, the batch of
 * items straight from the wire into rows of the model's columns (hundreds per request: the hot path).
 * Like service-kit's typed client, each call carries the request id and the earlier of its own timeout
 * and the caller's deadline.
 */
export class RankingFeatureClient implements RankingFeatures {
  private readonly client: Client;
  private readonly user = methodDefinition(features.FeatureService, features.FeatureService.method.getUserFeatures);
  private readonly items = methodDefinition(features.FeatureService, features.FeatureService.method.batchGetItemFeatures);

  constructor(
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    this.client = new Client(address, credentials.createInsecure(), { ...CHANNEL_OPTIONS });
  }

  getUserFeatures(request: { userId: string; historyLimit?: number }): Promise<features.GetUserFeaturesResponse> {
    const output = features.FeatureService.method.getUserFeatures.output;
    return this.call(this.user, request, (bytes) => fromBinary(output, bytes));
  }

  batchGetItemFeatures(request: { itemIds: string[] }): Promise<features.BatchGetItemFeaturesResponse> {
    const output = features.FeatureService.method.batchGetItemFeatures.output;
    return this.call(this.items, request, (bytes) => fromBinary(output, bytes));
  }

  /** One BatchGetItemFeatures call; rows in the order asked, unknown items as rows of defaults. */
  itemRows(itemIds: string[], columns: ItemColumns): Promise<{ rows: FeatureRow[]; missing: string[] }> {
    if (itemIds.length === 0) return Promise.resolve({ rows: [], missing: [] });
    return this.call(this.items, { itemIds }, (bytes) => decodeItemRows(bytes, itemIds, columns));
  }

  private call<T>(definition: ReturnType<typeof methodDefinition>, request: object, decode: (bytes: Buffer) => T): Promise<T> {
    const metadata = new Metadata();
    const context = currentRequestContext();
    if (context) metadata.set(REQUEST_ID_HEADER, context.requestId);
    const deadline = effectiveDeadline(this.timeoutMs, context?.deadlineMs);
    return new Promise<T>((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        decode,
        request,
        metadata,
        deadline === Infinity ? {} : { deadline },
        (error: GrpcServiceError | null, response?: T) => (error ? reject(error) : resolve(response!)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
