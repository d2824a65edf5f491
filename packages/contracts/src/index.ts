// Generated messages and service descriptors, one namespace per proto package.
export * as common from './gen/recsys/common/v1/common_pb.js';
export * as features from './gen/recsys/features/v1/features_pb.js';
export * as retrieval from './gen/recsys/retrieval/v1/retrieval_pb.js';
export * as preranking from './gen/recsys/preranking/v1/preranking_pb.js';
export * as ranking from './gen/recsys/ranking/v1/ranking_pb.js';
export * as reranking from './gen/recsys/reranking/v1/reranking_pb.js';
export * as gateway from './gen/recsys/gateway/v1/gateway_pb.js';
export * from './fields.js';
export * from './feature-values.js';
