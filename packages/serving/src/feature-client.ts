import { fromBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { features } from '@recsys/contracts';
import { CLIENT_CHANNEL_OPTIONS, currentRequestContext, effectiveDeadline, methodDefinition, REQUEST_ID_HEADER } from '@recsys/service-kit';
import type { FeatureReader } from './feature-reader.js';
import { decodeItemRows, type ItemColumnRows, type ItemColumns } from './item-rows-wire.js';

/** BatchGetItemFeatures answered as its undecoded bytes. */
export interface ItemBytesReader {
  batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer>;
}

const getUser = methodDefinition(features.FeatureService, features.FeatureService.method.getUserFeatures);
const batchGetItems = methodDefinition(features.FeatureService, features.FeatureService.method.batchGetItemFeatures);
const asBytes = (bytes: Buffer) => bytes;

/**
 * The feature service as the serving stages read it, on one channel: users and items through protobuf-es
 * (`FeatureReader`), and item batches as bytes for `readItemColumns` (hundreds of items per request: the
 * hot path). Like service-kit's typed client, each call carries the request id and the earlier of its own
 * timeout and the caller's deadline.
 */
export class FeatureServiceClient implements FeatureReader, ItemBytesReader {
  private constructor(
    private readonly channel: Client,
    readonly address: string,
    private readonly timeoutMs: number,
  ) {}

  /** A client of the feature service at `address`; `timeoutMs` bounds each call when the caller's deadline is later or absent. */
  static connect(address: string, timeoutMs: number): FeatureServiceClient {
    return new FeatureServiceClient(new Client(address, credentials.createInsecure(), { ...CLIENT_CHANNEL_OPTIONS }), address, timeoutMs);
  }

  getUserFeatures(request: { userId: string; historyLimit?: number }): Promise<features.GetUserFeaturesResponse> {
    const output = features.FeatureService.method.getUserFeatures.output;
    return this.call(getUser.path, getUser.requestSerialize, request, (bytes) => fromBinary(output, bytes));
  }

  batchGetItemFeatures(request: { itemIds: string[] }): Promise<features.BatchGetItemFeaturesResponse> {
    const output = features.FeatureService.method.batchGetItemFeatures.output;
    return this.call(batchGetItems.path, batchGetItems.requestSerialize, request, (bytes) => fromBinary(output, bytes));
  }

  batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer> {
    return this.call(batchGetItems.path, batchGetItems.requestSerialize, request, asBytes);
  }

  close(): void {
    this.channel.close();
  }

  private call<T>(path: string, serialize: (value: unknown) => Buffer, request: object, decode: (bytes: Buffer) => T): Promise<T> {
    const metadata = new Metadata();
    const context = currentRequestContext();
    if (context) metadata.set(REQUEST_ID_HEADER, context.requestId);
    const deadline = effectiveDeadline(this.timeoutMs, context?.deadlineMs);
    return new Promise<T>((resolve, reject) => {
      this.channel.makeUnaryRequest(
        path,
        serialize,
        decode,
        request,
        metadata,
        deadline === Infinity ? {} : { deadline },
        (error, value) => (error ? reject(error) : resolve(value!)),
      );
    });
  }
}

/**
 * Item rows in the order asked, of only the given columns, decoded straight from one BatchGetItemFeatures
 * answer (proven equal to `readItemRows` for those columns); unknown ids get rows of defaults, `found` false.
 */
export async function readItemColumns(reader: ItemBytesReader, itemIds: string[], columns: ItemColumns): Promise<ItemColumnRows> {
  if (itemIds.length === 0) return { rows: [], missing: [] };
  return decodeItemRows(await reader.batchGetItemFeatureBytes({ itemIds }), itemIds, columns);
}
