import type { gateway } from '@recsys/contracts';

/** Who is calling: the request id (propagated downstream as x-request-id) and the API key's name. */
export interface Caller {
  requestId: string;
  /** The name of the caller's API key; "anonymous" when auth is disabled. */
  keyName: string;
}

/**
 * What both transports (gRPC and REST) call once a request is authenticated and admitted by the rate limiter.
 * Every method validates its request (InvalidArgumentError naming the snake_case field path) before any work.
 */
export interface GatewayApi {
  recommend(request: gateway.RecommendRequest, caller: Caller): Promise<gateway.RecommendResponse>;
  sendFeedback(request: gateway.SendFeedbackRequest, caller: Caller): Promise<gateway.SendFeedbackResponse>;
  similarItems(request: gateway.GetSimilarItemsRequest, caller: Caller): Promise<gateway.GetSimilarItemsResponse>;
}
