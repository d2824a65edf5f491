import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { PrerankingController } from './preranking.controller.js';
import { PrerankingService } from './preranking-service.js';

const LIFECYCLE = Symbol('PrerankingLifecycle');

@Module({})
export class PrerankingModule {
  static register(service: PrerankingService, shutdown: () => Promise<void>): DynamicModule {
    return {
      module: PrerankingModule,
      controllers: [PrerankingController],
      providers: [
        { provide: PrerankingService, useValue: service },
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
