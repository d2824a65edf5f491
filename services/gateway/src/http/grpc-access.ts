import type { Metadata } from '@grpc/grpc-js';
import { requestIdFrom, type Logger, type ServiceMetrics } from '@recsys/service-kit';
import type { AccessConfig } from '../config.js';
import type { Caller } from '../gateway-api.js';
import { AccessControl } from './access-control.js';
import { presentedKey } from './api-keys.js';

function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** Admission of gRPC calls: the same API keys (authorization: Bearer / x-api-key metadata) and rate limit as the REST API. */
export class GrpcAccess {
  constructor(readonly control: AccessControl) {}

  /** Pass the result to startHttpServer too, so one API key has one rate-limit budget across both transports. */
  static fromConfig(access: AccessConfig, metrics: ServiceMetrics, logger: Logger): GrpcAccess {
    return new GrpcAccess(AccessControl.fromConfig(access, metrics, logger));
  }

  /** Rejects with UnauthenticatedError (UNAUTHENTICATED) or RateLimitedError (RESOURCE_EXHAUSTED, retry-after in the message). */
  async admit(metadata: Metadata, method: string): Promise<Caller> {
    const keyName = await this.control.admit(
      presentedKey(firstString(metadata, 'authorization'), firstString(metadata, 'x-api-key')),
      method,
    );
    return { requestId: requestIdFrom(metadata), keyName };
  }
}
