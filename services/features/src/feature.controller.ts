import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { features } from '@recsys/contracts';
import { FeatureService } from './feature-service.js';

/** gRPC handlers of recsys.features.v1.FeatureService; the logic lives in FeatureService. */
@Controller()
export class FeatureController {
  constructor(@Inject(FeatureService) private readonly service: FeatureService) {}

  @GrpcMethod('FeatureService', 'GetUserFeatures')
  getUserFeatures(request: features.GetUserFeaturesRequest) {
    return this.service.getUserFeatures(request);
  }

  @GrpcMethod('FeatureService', 'BatchGetItemFeatures')
  batchGetItemFeatures(request: features.BatchGetItemFeaturesRequest) {
    return this.service.batchGetItemFeatures(request);
  }

  @GrpcMethod('FeatureService', 'ScanItems')
  scanItems(request: features.ScanItemsRequest) {
    return this.service.scanItems(request);
  }

  @GrpcMethod('FeatureService', 'RecordFeedback')
  recordFeedback(request: features.RecordFeedbackRequest) {
    return this.service.recordFeedback(request);
  }

  @GrpcMethod('FeatureService', 'GetPopularItems')
  getPopularItems(request: features.GetPopularItemsRequest) {
    return this.service.getPopularItems(request);
  }

  @GrpcMethod('FeatureService', 'UpsertUsers')
  upsertUsers(request: features.UpsertUsersRequest) {
    return this.service.upsertUsers(request);
  }

  @GrpcMethod('FeatureService', 'LogImpressions')
  logImpressions(request: features.LogImpressionsRequest) {
    return this.service.logImpressions(request);
  }

  @GrpcMethod('FeatureService', 'ReadEventLog')
  readEventLog(request: features.ReadEventLogRequest) {
    return this.service.readEventLog(request);
  }

  @GrpcMethod('FeatureService', 'ListUsers')
  listUsers(request: features.ListUsersRequest) {
    return this.service.listUsers(request);
  }

  @GrpcMethod('FeatureService', 'UpsertItems')
  upsertItems(request: features.UpsertItemsRequest) {
    return this.service.upsertItems(request);
  }
}
