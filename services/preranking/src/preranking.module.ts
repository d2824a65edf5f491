import { Module, type DynamicModule } from '@nestjs/common';
import { PrerankingService } from './preranking-service.js';

/** The pre-ranking service in Nest's container (lifecycle); Prerank is served on grpc-js directly (preranking-app.ts). */
@Module({})
export class PrerankingModule {
  static register(service: PrerankingService): DynamicModule {
    return {
      module: PrerankingModule,
      providers: [{ provide: PrerankingService, useValue: service }],
    };
  }
}
