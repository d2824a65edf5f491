import { Module, type DynamicModule } from '@nestjs/common';
import { FeatureController } from './feature.controller.js';
import { FeatureService } from './feature-service.js';
import type { FeaturesConfig } from './config.js';
import type { FeatureStore } from './store/index.js';

@Module({})
export class FeatureModule {
  static register(config: FeaturesConfig, store: FeatureStore): DynamicModule {
    return {
      module: FeatureModule,
      controllers: [FeatureController],
      providers: [{ provide: FeatureService, useFactory: () => new FeatureService(store, config) }],
    };
  }
}
