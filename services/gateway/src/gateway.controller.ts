import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { gateway } from '@recsys/contracts';
import { currentRequestContext } from '@recsys/service-kit';
import type { Caller, GatewayApi } from './gateway-api.js';
import { GrpcAccess } from './http/grpc-access.js';

export const GATEWAY_API = Symbol('GatewayApi');

/** gRPC handler of recsys.gateway.v1.GatewayService: admits the caller (API key, rate limit), then the orchestrator answers. */
@Controller()
export class GatewayController {
  constructor(
    @Inject(GATEWAY_API) private readonly api: GatewayApi,
    @Inject(GrpcAccess) private readonly access: GrpcAccess,
  ) {}

  private async caller(metadata: Metadata, method: string): Promise<Caller> {
    const admitted = await this.access.admit(metadata, method);
    // The interceptor already chose the request id (the caller's x-request-id or a new one); keep that one.
    return { ...admitted, requestId: currentRequestContext()?.requestId ?? admitted.requestId };
  }

  @GrpcMethod('GatewayService', 'Recommend')
  async recommend(request: gateway.RecommendRequest, metadata: Metadata) {
    return this.api.recommend(request, await this.caller(metadata, 'Recommend'));
  }

  @GrpcMethod('GatewayService', 'SendFeedback')
  async sendFeedback(request: gateway.SendFeedbackRequest, metadata: Metadata) {
    return this.api.sendFeedback(request, await this.caller(metadata, 'SendFeedback'));
  }

  @GrpcMethod('GatewayService', 'GetSimilarItems')
  async getSimilarItems(request: gateway.GetSimilarItemsRequest, metadata: Metadata) {
    return this.api.similarItems(request, await this.caller(metadata, 'GetSimilarItems'));
  }
}
