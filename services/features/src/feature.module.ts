import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { FeatureController } from './feature.controller.js';
import { FeatureService } from './feature-service.js';
import type { FeaturesConfig } from './config.js';
import type { FeatureStore } from './store/index.js';

const FEATURE_STORE = Symbol('FeatureStore');

@Module({})
export class FeatureModule {
  static register(config: FeaturesConfig, store: FeatureStore): DynamicModule {
    return {
      module: FeatureModule,
      controllers: [FeatureController],
      providers: [
        { provide: FEATURE_STORE, useValue: new StoreLifecycle(store) },
        { provide: FeatureService, useFactory: () => new FeatureService(store, config) },
      ],
    };
  }
}

/** Closes the store after the gRPC server has drained its in-flight calls. */
class StoreLifecycle implements OnApplicationShutdown {
  constructor(private readonly store: FeatureStore) {}
  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
