import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { FeatureClient } from './feature-source.js';
import { RerankingController } from './reranking.controller.js';
import { RerankingService } from './reranking-service.js';

const FEATURE_CLIENT = Symbol('FeatureClient');

@Module({})
export class RerankingModule {
  static register(service: RerankingService, featureClient: FeatureClient): DynamicModule {
    return {
      module: RerankingModule,
      controllers: [RerankingController],
      providers: [
        { provide: RerankingService, useValue: service },
        { provide: FEATURE_CLIENT, useValue: new ClientLifecycle(featureClient) },
      ],
    };
  }
}

/** Closes the feature-service channel after the gRPC server has drained its in-flight calls. */
class ClientLifecycle implements OnApplicationShutdown {
  constructor(private readonly client: FeatureClient) {}
  onApplicationShutdown(): void {
    this.client.close();
  }
}
