import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { reranking } from '@recsys/contracts';
import { RerankingService } from './reranking-service.js';

/** gRPC handler of recsys.reranking.v1.RerankingService; the logic lives in RerankingService. */
@Controller()
export class RerankingController {
  constructor(@Inject(RerankingService) private readonly service: RerankingService) {}

  @GrpcMethod('RerankingService', 'Rerank')
  rerank(request: reranking.RerankRequest) {
    return this.service.rerank(request);
  }
}
