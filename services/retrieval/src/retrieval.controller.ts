import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { retrieval } from '@recsys/contracts';
import { RetrievalService } from './retrieval-service.js';

/** gRPC handlers of recsys.retrieval.v1.RetrievalService; the logic lives in RetrievalService. */
@Controller()
export class RetrievalController {
  constructor(@Inject(RetrievalService) private readonly service: RetrievalService) {}

  @GrpcMethod('RetrievalService', 'Retrieve')
  retrieve(request: retrieval.RetrieveRequest) {
    return this.service.retrieve(request);
  }

  @GrpcMethod('RetrievalService', 'GetSimilarItems')
  getSimilarItems(request: retrieval.GetSimilarItemsRequest) {
    return this.service.getSimilarItems(request);
  }

  @GrpcMethod('RetrievalService', 'GetIndexInfo')
  getIndexInfo() {
    return this.service.getIndexInfo();
  }
}
