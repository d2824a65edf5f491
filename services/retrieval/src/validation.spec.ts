import { create } from '@bufbuild/protobuf';
import { retrieval } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import { checkRetrieveRequest, checkSimilarItemsRequest, type RequestLimits } from './validation.js';

const limits: RequestLimits = {
  defaultLimit: 100,
  maxLimit: 500,
  quotas: { two_tower: 200, popular: 50, item_to_item: 100 },
  maxIdLength: 16,
  maxListSize: 3,
};

const retrieve = (init: Parameters<typeof create<typeof retrieval.RetrieveRequestSchema>>[1]) =>
  checkRetrieveRequest(create(retrieval.RetrieveRequestSchema, init), limits);

function fieldOf(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.field;
    throw error;
  }
  throw new Error('no error');
}

describe('checkRetrieveRequest', () => {
  it('applies the default limit and the configured quotas, overridden per channel', () => {
    expect(retrieve({ userId: 'u1' })).toEqual({ limit: 100, quotas: { two_tower: 200, popular: 50, item_to_item: 100 } });
    expect(
      retrieve({
        userId: 'u1',
        limit: 7,
        quotas: [
          { channel: 'popular', limit: 0 },
          { channel: 'two_tower', limit: 20 },
        ],
      }),
    ).toEqual({
      limit: 7,
      quotas: { two_tower: 20, popular: 0, item_to_item: 100 },
    });
  });

  it.each([
    [{ userId: '' }, 'user_id'],
    [{ userId: 'x'.repeat(17) }, 'user_id'],
    [{ userId: 'a\nb' }, 'user_id'],
    [{ userId: 'u', limit: -1 }, 'limit'],
    [{ userId: 'u', limit: 501 }, 'limit'],
    [
      {
        userId: 'u',
        quotas: [
          { channel: 'two_tower', limit: 1 },
          { channel: 'trending', limit: 5 },
        ],
      },
      'quotas[1].channel',
    ],
    [
      {
        userId: 'u',
        quotas: [
          { channel: 'popular', limit: 1 },
          { channel: 'popular', limit: 2 },
        ],
      },
      'quotas[1].channel',
    ],
    [{ userId: 'u', quotas: [{ channel: 'popular', limit: -3 }] }, 'quotas[0].limit'],
    [{ userId: 'u', quotas: [{ channel: 'popular', limit: 501 }] }, 'quotas[0].limit'],
    [{ userId: 'u', context: { recentItems: [{ itemId: 'a' }, { itemId: '' }] } }, 'context.recent_items[1].item_id'],
    [{ userId: 'u', context: { recentItems: [1, 2, 3, 4].map((n) => ({ itemId: `i${n}` })) } }, 'context.recent_items'],
    [{ userId: 'u', filter: { excludeItemIds: ['a', 'b', 'c', 'd'] } }, 'filter.exclude_item_ids'],
    [{ userId: 'u', filter: { includeCategories: ['a', 'b', 'c', 'd'] } }, 'filter.include_categories'],
  ])('rejects %j naming %s', (init, field) => {
    expect(fieldOf(() => retrieve(init))).toBe(field);
  });

  it('says what is wrong in the message', () => {
    expect(() => retrieve({ userId: 'u', quotas: [{ channel: 'trending', limit: 5 }] })).toThrow(
      'quotas[0].channel: unknown channel "trending"; channels are two_tower, popular, item_to_item',
    );
    expect(() => retrieve({ userId: 'u', limit: 900 })).toThrow('limit: must be between 0 and 500 (0 means the default, 100); got 900');
  });
});

describe('checkSimilarItemsRequest', () => {
  it('checks the item id and the limit', () => {
    const similar = (init: Parameters<typeof create<typeof retrieval.GetSimilarItemsRequestSchema>>[1]) =>
      checkSimilarItemsRequest(create(retrieval.GetSimilarItemsRequestSchema, init), limits);
    expect(similar({ itemId: 'i1' })).toEqual({ limit: 100 });
    expect(similar({ itemId: 'i1', limit: 3 })).toEqual({ limit: 3 });
    expect(fieldOf(() => similar({ itemId: '' }))).toBe('item_id');
    expect(fieldOf(() => similar({ itemId: 'i1', limit: 1000 }))).toBe('limit');
  });
});
