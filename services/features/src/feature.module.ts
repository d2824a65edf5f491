import { Module, type DynamicModule } from '@nestjs/common';
import { FeatureController } from './feature.controller.js';
import { FeatureService } from './feature-service.js';
import type { FeaturesConfig } from './config.js';
import type { FeatureStore } from './store/index.js';
import type { EventMetrics } from './event-metrics.js';
import type { Logger } from '@recsys/service-kit';

@Module({})
export class FeatureModule {
  static register(config: FeaturesConfig, store: FeatureStore, events?: { metrics: EventMetrics; logger: Logger }): DynamicModule {
    return {
      module: FeatureModule,
      controllers: [FeatureController],
      providers: [{ provide: FeatureService, useFactory: () => new FeatureService(store, config, Date.now, events) }],
    };
  }
}
