import { create } from '@bufbuild/protobuf';
import { common, gateway } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import {
  feedbackRequestFromBody,
  feedbackResponseJson,
  fieldPath,
  recommendRequestFromBody,
  recommendRequestFromQuery,
  recommendResponseJson,
  responseJson,
  similarRequestFromQuery,
} from './rest-schemas.js';

function errorOf(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error;
    throw error;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('recommendRequestFromBody', () => {
  it('converts every field of the snake_case body', () => {
    const req = recommendRequestFromBody({
      user_id: 'u1',
      context: {
        recent_items: [
          { item_id: 'i1', timestamp_ms: 1700000000123, dwell_seconds: 4.5, event_type: 'add_to_cart' },
          { item_id: 'i2', timestamp_ms: '9007199254740993', event_type: 'EVENT_TYPE_PURCHASE' },
          { item_id: 'i3' },
        ],
        attributes: { device: 'ios' },
        request_time_ms: 5,
      },
      k: 7,
      filter: { include_categories: ['books'], exclude_item_ids: ['i1'] },
      budget_ms: 120,
      debug: true,
      funnel: { retrieved: 500, pre_ranked: 150 },
    });
    expect(req).toEqual(
      create(gateway.RecommendRequestSchema, {
        userId: 'u1',
        context: {
          recentItems: [
            { itemId: 'i1', timestampMs: 1700000000123n, dwellSeconds: 4.5, eventType: common.EventType.ADD_TO_CART },
            { itemId: 'i2', timestampMs: 9007199254740993n, eventType: common.EventType.PURCHASE },
            { itemId: 'i3' },
          ],
          attributes: { device: 'ios' },
          requestTimeMs: 5n,
        },
        k: 7,
        filter: { includeCategories: ['books'], excludeItemIds: ['i1'] },
        budgetMs: 120,
        debug: true,
        funnel: { retrieved: 500, preRanked: 150, ranked: 0 },
      }),
    );
  });

  it('leaves absent parts unset: 0 means "the default" to the orchestrator', () => {
    const req = recommendRequestFromBody({ user_id: 'u1' });
    expect(req.context).toBeUndefined();
    expect(req.filter).toBeUndefined();
    expect([req.k, req.budgetMs, req.debug]).toEqual([0, 0, false]);
  });

  it.each([
    [{ user_id: 'u1', colour: 'red' }, 'colour', 'unknown field'],
    [
      { user_id: 'u1', context: { recent_items: [{ item_id: 'a' }, { item_id: 'b', extra: 1 }] } },
      'context.recent_items[1].extra',
      'unknown field',
    ],
    [{}, 'user_id', 'is required'],
    [{ user_id: 5 }, 'user_id', 'expected string'],
    [{ user_id: 'u', k: 2.5 }, 'k', 'expected int'],
    [{ user_id: 'u', k: '5' }, 'k', 'expected number'],
    [{ user_id: 'u', k: 2 ** 31 }, 'k', 'Too big'],
    [{ user_id: 'u', debug: 'yes' }, 'debug', 'expected boolean'],
    [{ user_id: 'u', context: { recent_items: [{ item_id: 'a', event_type: 'stared' }] } }, 'context.recent_items[0].event_type', 'view'],
    [
      { user_id: 'u', context: { recent_items: [{ item_id: 'a', timestamp_ms: '1e5' }] } },
      'context.recent_items[0].timestamp_ms',
      'must be an integer',
    ],
    [{ user_id: 'u', context: { request_time_ms: '99999999999999999999' } }, 'context.request_time_ms', 'must fit in 64 bits'],
    [{ user_id: 'u', context: { attributes: { device: 1 } } }, 'context.attributes.device', 'expected string'],
    [{ user_id: 'u', filter: { include_categories: 'books' } }, 'filter.include_categories', 'expected array'],
  ])('refuses %j naming %s', (body, field, problem) => {
    const error = errorOf(() => recommendRequestFromBody(body));
    expect(error.field).toBe(field);
    expect(error.message).toContain(problem);
  });

  it('names the body when it is not an object', () => {
    expect(errorOf(() => recommendRequestFromBody([1, 2])).field).toBe('body');
    expect(errorOf(() => recommendRequestFromBody(undefined)).field).toBe('body');
  });
});

describe('recommendRequestFromQuery', () => {
  it('parses the GET form into the same message', () => {
    const query = {
      user_id: 'u1',
      k: '5',
      recent: 'item-1,item-2',
      include_categories: 'a,b',
      exclude_categories: 'c',
      debug: 'true',
      budget_ms: '80',
    };
    expect(recommendRequestFromQuery(query)).toEqual(
      create(gateway.RecommendRequestSchema, {
        userId: 'u1',
        k: 5,
        context: { recentItems: [{ itemId: 'item-1' }, { itemId: 'item-2' }] },
        filter: { includeCategories: ['a', 'b'], excludeCategories: ['c'] },
        debug: true,
        budgetMs: 80,
      }),
    );
  });

  it('keeps empty list entries for validation to name, rather than dropping them', () => {
    expect(recommendRequestFromQuery({ user_id: 'u', recent: 'a,,b' }).context!.recentItems.map((i) => i.itemId)).toEqual(['a', '', 'b']);
  });

  it.each([
    [{ user_id: 'u', page: '2' }, 'page'],
    [{ user_id: 'u', k: 'ten' }, 'k'],
    [{ user_id: 'u', k: ['1', '2'] }, 'k'],
    [{ user_id: 'u', debug: 'maybe' }, 'debug'],
    [{ k: '3' }, 'user_id'],
  ])('refuses %j naming %s', (query, field) => {
    expect(errorOf(() => recommendRequestFromQuery(query)).field).toBe(field);
  });
});

describe('feedbackRequestFromBody and similarRequestFromQuery', () => {
  it('converts feedback events, leaving missing ids empty for withEventIds', () => {
    const req = feedbackRequestFromBody({
      events: [
        { user_id: 'u', item_id: 'i', event_type: 'click', request_id: 'r1', dwell_seconds: 2 },
        { event_id: 'e2', user_id: 'u', item_id: 'j', event_type: 'EVENT_TYPE_LIKE', timestamp_ms: '17' },
      ],
    });
    expect(req.events.map((e) => [e.eventId, e.itemId, e.eventType, e.timestampMs, e.requestId, e.dwellSeconds])).toEqual([
      ['', 'i', common.EventType.CLICK, 0n, 'r1', 2],
      ['e2', 'j', common.EventType.LIKE, 17n, '', 0],
    ]);
    expect(errorOf(() => feedbackRequestFromBody({ events: [{ user_id: 'u', item_id: 'i' }] })).field).toBe('events[0].event_type');
    expect(errorOf(() => feedbackRequestFromBody({ event: [] })).message).toBe('events: is required');
    expect(errorOf(() => feedbackRequestFromBody({ events: [], event: [] })).field).toBe('event');
  });

  it('parses the similar-items query', () => {
    const req = similarRequestFromQuery('item 7', { k: '3', exclude_categories: 'x,y' });
    expect(req).toEqual(
      create(gateway.GetSimilarItemsRequestSchema, { itemId: 'item 7', k: 3, filter: { excludeCategories: ['x', 'y'] } }),
    );
    expect(similarRequestFromQuery('i', {}).filter).toBeUndefined();
    expect(errorOf(() => similarRequestFromQuery('i', { user_id: 'u' })).field).toBe('user_id');
  });
});

describe('responseJson', () => {
  it('writes snake_case with every field and enum names, as the documented response schema says', () => {
    const answer = create(gateway.RecommendResponseSchema, {
      items: [{ itemId: 'i1', score: 0.5, category: 'books', channels: ['two_tower'] }],
      requestId: 'r1',
      timings: [{ stage: common.Stage.RANKING, durationMs: 3.5, candidatesIn: 300, candidatesOut: 300 }],
      degradations: [
        { stage: common.Stage.RERANKING, cause: common.DegradationCause.DEADLINE_EXCEEDED, detail: 'late', fallback: 'ranking order' },
      ],
      totalMs: 12.25,
      debug: [
        {
          stage: common.Stage.RETRIEVAL,
          candidates: [{ itemId: 'i1', score: 1, channels: ['popular'], stageScores: [{ stage: common.Stage.RETRIEVAL, score: 1 }] }],
          rules: [{ rule: 'dedup', removedItemIds: ['i2'] }],
        },
      ],
    });
    const json = responseJson(gateway.RecommendResponseSchema, answer);
    expect(recommendResponseJson.parse(json)).toEqual(json);
    expect(json).toMatchObject({
      items: [{ item_id: 'i1', score: 0.5, category: 'books', channels: ['two_tower'] }],
      timings: [{ stage: 'STAGE_RANKING', duration_ms: 3.5, candidates_in: 300 }],
      degradations: [{ stage: 'STAGE_RERANKING', cause: 'DEGRADATION_CAUSE_DEADLINE_EXCEEDED' }],
      debug: [{ rules: [{ rule: 'dedup', removed_item_ids: ['i2'], changed_item_ids: [], error: '' }] }],
    });
    const empty = responseJson(gateway.SendFeedbackResponseSchema, create(gateway.SendFeedbackResponseSchema, {}));
    expect(feedbackResponseJson.parse(empty)).toEqual({ accepted: 0, duplicates: 0 });
  });

  it('joins paths the way validation names fields', () => {
    expect(fieldPath(['context', 'recent_items', 3, 'item_id'])).toBe('context.recent_items[3].item_id');
    expect(fieldPath(['events', 0])).toBe('events[0]');
  });
});
