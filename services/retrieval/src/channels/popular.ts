import type { MessageInitShape } from '@bufbuild/protobuf';
import type { common, features } from '@recsys/contracts';
import { type ChannelCandidate, channelCandidate } from './channel.js';

export interface PopularItemsRequest {
  limit: number;
  filter?: MessageInitShape<typeof common.ItemFilterSchema>;
}

/** The feature-service call the popular channel needs; the typed gRPC client and the in-memory cache satisfy it. */
export interface PopularItemsReader {
  getPopularItems(
    request: PopularItemsRequest,
    options?: { signal?: AbortSignal },
  ): Promise<{ items: readonly Pick<features.PopularItem, 'itemId' | 'score'>[] }>;
}

/**
 * The most popular items now, as the feature service ranks them, with the request's filter applied there.
 * Asks for `quota + overfetch` because seen items are dropped afterwards (this call starts before the history is read).
 */
export async function popularCandidates(
  reader: PopularItemsReader,
  quota: number,
  overfetch: number,
  filter: common.ItemFilter | undefined,
  signal: AbortSignal,
): Promise<ChannelCandidate[]> {
  const answer = await reader.getPopularItems(
    {
      limit: quota + overfetch,
      filter: filter && {
        includeCategories: filter.includeCategories,
        excludeCategories: filter.excludeCategories,
        excludeItemIds: filter.excludeItemIds,
      },
    },
    { signal },
  );
  return answer.items.map((item) => channelCandidate(item.itemId, item.score, undefined));
}
