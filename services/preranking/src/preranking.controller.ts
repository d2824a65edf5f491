import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { preranking } from '@recsys/contracts';
import { PrerankingService } from './preranking-service.js';

/** gRPC handlers of recsys.preranking.v1.PrerankingService; the logic lives in PrerankingService. */
@Controller()
export class PrerankingController {
  constructor(@Inject(PrerankingService) private readonly service: PrerankingService) {}

  @GrpcMethod('PrerankingService', 'Prerank')
  prerank(request: preranking.PrerankRequest) {
    return this.service.prerank(request);
  }
}
