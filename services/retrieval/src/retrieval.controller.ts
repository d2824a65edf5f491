import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { retrieval } from '@recsys/contracts';
import { RetrievalService } from './retrieval-service.js';

/**
 * Nest handlers of recsys.retrieval.v1.RetrievalService's other methods; Retrieve, the hot method, is served on grpc-js
 * directly (retrieval-app.ts). The logic lives in RetrievalService.
 */
@Controller()
export class RetrievalController {
  constructor(@Inject(RetrievalService) private readonly service: RetrievalService) {}

  @GrpcMethod('RetrievalService', 'GetSimilarItems')
  getSimilarItems(request: retrieval.GetSimilarItemsRequest) {
    return this.service.getSimilarItems(request);
  }

  @GrpcMethod('RetrievalService', 'GetIndexInfo')
  getIndexInfo() {
    return this.service.getIndexInfo();
  }
}
