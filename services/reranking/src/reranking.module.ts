import { Module, type DynamicModule } from '@nestjs/common';
import { RerankingService } from './reranking-service.js';

/** The re-ranking service in Nest's container (lifecycle); Rerank is served on grpc-js directly (reranking-app.ts). */
@Module({})
export class RerankingModule {
  static register(service: RerankingService): DynamicModule {
    return { module: RerankingModule, providers: [{ provide: RerankingService, useValue: service }] };
  }
}
