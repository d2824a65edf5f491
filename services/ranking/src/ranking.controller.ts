import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { ranking } from '@recsys/contracts';
import { RankingService } from './ranking-service.js';

/** gRPC handlers of recsys.ranking.v1.RankingService; the logic lives in RankingService. */
@Controller()
export class RankingController {
  constructor(@Inject(RankingService) private readonly service: RankingService) {}

  @GrpcMethod('RankingService', 'Rank')
  rank(request: ranking.RankRequest) {
    return this.service.rank(request);
  }

  @GrpcMethod('RankingService', 'GetModelInfo')
  getModelInfo() {
    return this.service.modelInfo();
  }
}
