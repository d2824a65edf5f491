import { Module, type DynamicModule } from '@nestjs/common';
import { PrerankingController } from './preranking.controller.js';
import { PrerankingService } from './preranking-service.js';

@Module({})
export class PrerankingModule {
  static register(service: PrerankingService): DynamicModule {
    return {
      module: PrerankingModule,
      controllers: [PrerankingController],
      providers: [{ provide: PrerankingService, useValue: service }],
    };
  }
}
