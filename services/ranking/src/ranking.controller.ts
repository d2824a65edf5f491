import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { RankingService } from './ranking-service.js';

/**
 * The Nest handler of recsys.ranking.v1.RankingService's GetModelInfo; Rank, the hot method, is served on grpc-js
 * directly (ranking-app.ts). The logic lives in RankingService.
 */
@Controller()
export class RankingController {
  constructor(@Inject(RankingService) private readonly service: RankingService) {}

  @GrpcMethod('RankingService', 'GetModelInfo')
  getModelInfo() {
    return this.service.modelInfo();
  }
}
