import type { common, retrieval } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import { CHANNELS, type ChannelName, isChannelName } from './channels/channel.js';

export interface RequestLimits {
  defaultLimit: number;
  maxLimit: number;
  quotas: Readonly<Record<ChannelName, number>>;
  maxIdLength: number;
  maxListSize: number;
}

/** A Retrieve request's effective sizes once checked. */
export interface RetrievePlan {
  limit: number;
  quotas: Record<ChannelName, number>;
}

export function checkId(field: string, id: string, maxLength: number): void {
  if (id.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (id.length > maxLength) throw new InvalidArgumentError(field, `must be at most ${maxLength} characters (got ${id.length})`);
  // Ids are opaque but printable: control characters would corrupt logs and keys downstream.
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

function checkListSize(field: string, size: number, limits: RequestLimits): void {
  if (size > limits.maxListSize) throw new InvalidArgumentError(field, `at most ${limits.maxListSize} entries (got ${size})`);
}

/** 0 means the default; otherwise 1..maxLimit. */
function checkLimit(field: string, limit: number, limits: RequestLimits): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > limits.maxLimit) {
    throw new InvalidArgumentError(
      field,
      `must be between 0 and ${limits.maxLimit} (0 means the default, ${limits.defaultLimit}); got ${limit}`,
    );
  }
  return limit === 0 ? limits.defaultLimit : limit;
}

export function checkFilter(filter: common.ItemFilter | undefined, limits: RequestLimits): void {
  if (!filter) return;
  checkListSize('filter.include_categories', filter.includeCategories.length, limits);
  checkListSize('filter.exclude_categories', filter.excludeCategories.length, limits);
  checkListSize('filter.exclude_item_ids', filter.excludeItemIds.length, limits);
}

export function checkRetrieveRequest(request: retrieval.RetrieveRequest, limits: RequestLimits): RetrievePlan {
  checkId('user_id', request.userId, limits.maxIdLength);
  const limit = checkLimit('limit', request.limit, limits);
  const quotas = { ...limits.quotas };
  const named = new Set<string>();
  request.quotas.forEach((quota, i) => {
    if (!isChannelName(quota.channel)) {
      throw new InvalidArgumentError(`quotas[${i}].channel`, `unknown channel "${quota.channel}"; channels are ${CHANNELS.join(', ')}`);
    }
    if (named.has(quota.channel)) throw new InvalidArgumentError(`quotas[${i}].channel`, `"${quota.channel}" is named twice`);
    named.add(quota.channel);
    if (quota.limit < 0 || quota.limit > limits.maxLimit) {
      throw new InvalidArgumentError(
        `quotas[${i}].limit`,
        `must be between 0 and ${limits.maxLimit} (0 turns the channel off); got ${quota.limit}`,
      );
    }
    quotas[quota.channel] = quota.limit;
  });
  const items = request.context?.recentItems ?? [];
  checkListSize('context.recent_items', items.length, limits);
  items.forEach((item, i) => checkId(`context.recent_items[${i}].item_id`, item.itemId, limits.maxIdLength));
  checkFilter(request.filter, limits);
  return { limit, quotas };
}

export function checkSimilarItemsRequest(request: retrieval.GetSimilarItemsRequest, limits: RequestLimits): { limit: number } {
  checkId('item_id', request.itemId, limits.maxIdLength);
  const limit = checkLimit('limit', request.limit, limits);
  checkFilter(request.filter, limits);
  return { limit };
}
