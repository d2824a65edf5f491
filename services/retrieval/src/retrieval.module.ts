import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { RetrievalController } from './retrieval.controller.js';
import { RetrievalService } from './retrieval-service.js';

const RESOURCES = Symbol('RetrievalResources');

@Module({})
export class RetrievalModule {
  /** `release` runs once the gRPC server has drained its in-flight calls. */
  static register(service: RetrievalService, release: () => Promise<void>): DynamicModule {
    return {
      module: RetrievalModule,
      controllers: [RetrievalController],
      providers: [
        { provide: RESOURCES, useValue: new ResourceLifecycle(release) },
        { provide: RetrievalService, useValue: service },
      ],
    };
  }
}

/** Stops the index watcher, releases the ONNX sessions and index, closes the feature-service channel. */
class ResourceLifecycle implements OnApplicationShutdown {
  constructor(private readonly release: () => Promise<void>) {}
  async onApplicationShutdown(): Promise<void> {
    await this.release();
  }
}
