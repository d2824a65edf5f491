import { Module, type DynamicModule } from '@nestjs/common';
import { RetrievalController } from './retrieval.controller.js';
import { RetrievalService } from './retrieval-service.js';

@Module({})
export class RetrievalModule {
  static register(service: RetrievalService): DynamicModule {
    return { module: RetrievalModule, controllers: [RetrievalController], providers: [{ provide: RetrievalService, useValue: service }] };
  }
}
