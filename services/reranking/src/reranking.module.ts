import { Module, type DynamicModule } from '@nestjs/common';
import { RerankingController } from './reranking.controller.js';
import { RerankingService } from './reranking-service.js';

@Module({})
export class RerankingModule {
  static register(service: RerankingService): DynamicModule {
    return { module: RerankingModule, controllers: [RerankingController], providers: [{ provide: RerankingService, useValue: service }] };
  }
}
