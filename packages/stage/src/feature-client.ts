import { create, toBinary } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { createServiceClient, type ServiceClient } from '@recsys/service-kit';
import type { ItemBytesReader, ItemScanner } from '@recsys/serving';
import type { FeatureReader } from './feature-reader.js';

/** One page of a scan (thousands of items) on a busy feature service. */
const SCAN_TIMEOUT_MS = 30_000;

/**
 * The feature service as the stages read it, on service-kit's one gRPC client (request id and the earlier of
 * its own timeout and the caller's deadline on every call): users and items through protobuf-es
 * (`FeatureReader`), and item batches as the bytes they came in for the model runtime's item reader
 * (`ItemBytesReader`: hundreds of items per request, decoded straight from the wire), and the item scan the
 * item tables load through (`ItemScanner`).
 */
export class FeatureServiceClient implements FeatureReader, ItemBytesReader, ItemScanner {
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
    const body = toBinary(features.BatchGetItemFeaturesRequestSchema, create(features.BatchGetItemFeaturesRequestSchema, request));
    const bytes = await this.client.raw('batchGetItemFeatures', body);
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** One ScanItems page as its bytes (item tables load through it); a page may take longer than a request's read. */
  async scanItemBytes(request: { cursor: string; limit: number }): Promise<Buffer> {
    const body = toBinary(features.ScanItemsRequestSchema, create(features.ScanItemsRequestSchema, request));
    const bytes = await this.client.raw('scanItems', body, { timeoutMs: SCAN_TIMEOUT_MS });
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  close(): void {
    this.client.close();
  }
}
