import { create, toBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { createServiceClient, type ServiceClient } from '@recsys/service-kit';
import type { FeatureReader } from './feature-reader.js';
import { decodeItemRows, type ItemColumnRows, type ItemColumns } from './item-rows-wire.js';

/** BatchGetItemFeatures answered as its undecoded bytes. */
export interface ItemBytesReader {
  batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer>;
}

const toBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The feature service as the serving stages read it, on service-kit's one client (so on one channel, or in-process in
 * the all-in-one mode): users and items through protobuf-es (`FeatureReader`), and item batches as bytes for
 * `readItemColumns` (hundreds of items per request: the hot path). Each call carries the request id and the earlier of
 * its own timeout and the caller's deadline.
 */
export class FeatureServiceClient implements FeatureReader, ItemBytesReader {
  private constructor(
    private readonly client: ServiceClient<typeof features.FeatureService.method>,
    readonly address: string,
  ) {}

  /** A client of the feature service at `address`; `timeoutMs` bounds each call when the caller's deadline is later or absent. */
  static connect(address: string, timeoutMs: number): FeatureServiceClient {
    return new FeatureServiceClient(createServiceClient(features.FeatureService, address, { defaultTimeoutMs: timeoutMs }), address);
  }

  getUserFeatures(request: { userId: string; historyLimit?: number }): Promise<features.GetUserFeaturesResponse> {
    return this.client.getUserFeatures(request);
  }

  batchGetItemFeatures(request: { itemIds: string[] }): Promise<features.BatchGetItemFeaturesResponse> {
    return this.client.batchGetItemFeatures(request);
  }

  async batchGetItemFeatureBytes(request: { itemIds: string[] }): Promise<Buffer> {
    const bytes = toBinary(features.BatchGetItemFeaturesRequestSchema, create(features.BatchGetItemFeaturesRequestSchema, request));
    return toBuffer(await this.client.raw('batchGetItemFeatures', bytes));
  }

  close(): void {
    this.client.close();
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
