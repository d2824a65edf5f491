import { Module, type DynamicModule } from '@nestjs/common';
import type { GatewayApi } from './gateway-api.js';
import { GATEWAY_API, GatewayController } from './gateway.controller.js';
import { GrpcAccess } from './http/grpc-access.js';

@Module({})
export class GatewayModule {
  static register(api: GatewayApi, access: GrpcAccess): DynamicModule {
    return {
      module: GatewayModule,
      controllers: [GatewayController],
      providers: [
        { provide: GATEWAY_API, useValue: api },
        { provide: GrpcAccess, useValue: access },
      ],
    };
  }
}
