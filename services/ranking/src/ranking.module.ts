import { Module, type DynamicModule } from '@nestjs/common';
import { RankingController } from './ranking.controller.js';
import { RankingService } from './ranking-service.js';

@Module({})
export class RankingModule {
  static register(service: RankingService): DynamicModule {
    return { module: RankingModule, controllers: [RankingController], providers: [{ provide: RankingService, useValue: service }] };
  }
}
