import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { RankingController } from './ranking.controller.js';
import { RankingService } from './ranking-service.js';

const LIFECYCLE = Symbol('RankingLifecycle');

@Module({})
export class RankingModule {
  static register(service: RankingService, shutdown: () => Promise<void>): DynamicModule {
    return {
      module: RankingModule,
      controllers: [RankingController],
      providers: [
        { provide: RankingService, useValue: service },
        { provide: LIFECYCLE, useValue: new ShutdownHook(shutdown) },
      ],
    };
  }
}

/** Releases the models and the feature client after the gRPC server has drained its in-flight calls. */
class ShutdownHook implements OnApplicationShutdown {
  constructor(private readonly shutdown: () => Promise<void>) {}
  async onApplicationShutdown(): Promise<void> {
    await this.shutdown();
  }
}
