import { create } from '@bufbuild/protobuf';
import { common, gateway } from '@recsys/contracts';
import { InvalidArgumentError } from '@recsys/service-kit';
import type { LimitsConfig } from './config.js';
import { validateFeedbackRequest, validateFunnel, validateRecommendRequest, validateSimilarRequest, withEventIds } from './validation.js';

const limits: LimitsConfig = {
  defaultK: 10,
  maxK: 50,
  maxContextItems: 3,
  maxFilterValues: 2,
  maxFeedbackEvents: 3,
  maxIdLength: 12,
  maxAttributes: 2,
};

type RecommendInit = Parameters<typeof create<typeof gateway.RecommendRequestSchema>>[1];

const recommend = (init: RecommendInit) => create(gateway.RecommendRequestSchema, { userId: 'u1', ...init });

/** The field an InvalidArgumentError names, or undefined when the call passes. */
function fieldOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.field;
    throw error;
  }
}

const recommendField = (init: RecommendInit) => fieldOf(() => validateRecommendRequest(recommend(init), limits));

describe('validateRecommendRequest', () => {
  it('accepts a full request, repeated context items and unspecified context event types', () => {
    const req = recommend({
      k: 50,
      budgetMs: 100000,
      debug: true,
      context: {
        recentItems: [
          { itemId: 'i1', timestampMs: 1n, dwellSeconds: 2.5, eventType: common.EventType.VIEW },
          { itemId: 'i1', eventType: common.EventType.UNSPECIFIED },
        ],
        attributes: { device: 'ios', locale: 'en' },
        requestTimeMs: 1700000000000n,
      },
      filter: { includeCategories: ['a', 'b'], excludeCategories: ['c'], excludeItemIds: ['i9'] },
    });
    expect(() => validateRecommendRequest(req, limits)).not.toThrow();
    expect(recommendField({ k: 0, budgetMs: 0 })).toBeUndefined();
  });

  it.each<[string, RecommendInit]>([
    ['user_id', { userId: '' }],
    ['user_id', { userId: 'x'.repeat(13) }],
    ['user_id', { userId: 'a\nb' }],
    // Regression (fuzz): a lone surrogate passed the id check, then failed protobuf's UTF-8 encoding as a 500.
    ['user_id', { userId: 'a\ud800' }],
    ['user_id', { userId: '\udfffb' }],
    ['k', { k: -1 }],
    ['k', { k: 51 }],
    ['budget_ms', { budgetMs: -5 }],
    ['context.recent_items', { context: { recentItems: [{ itemId: 'a' }, { itemId: 'b' }, { itemId: 'c' }, { itemId: 'd' }] } }],
    ['context.recent_items[1].item_id', { context: { recentItems: [{ itemId: 'a' }, { itemId: '' }] } }],
    ['context.recent_items[0].dwell_seconds', { context: { recentItems: [{ itemId: 'a', dwellSeconds: -1 }] } }],
    ['context.recent_items[0].dwell_seconds', { context: { recentItems: [{ itemId: 'a', dwellSeconds: NaN }] } }],
    ['context.recent_items[0].dwell_seconds', { context: { recentItems: [{ itemId: 'a', dwellSeconds: 1e39 }] } }],
    ['context.recent_items[0].timestamp_ms', { context: { recentItems: [{ itemId: 'a', timestampMs: -1n }] } }],
    ['context.recent_items[0].event_type', { context: { recentItems: [{ itemId: 'a', eventType: 42 as common.EventType }] } }],
    ['context.request_time_ms', { context: { requestTimeMs: -1n } }],
    ['context.request_time_ms', { context: { requestTimeMs: 8_640_000_000_000_001n } }],
    ['context.attributes', { context: { attributes: { a: '1', b: '2', c: '3' } } }],
    ['context.attributes[""]', { context: { attributes: { '': 'x' } } }],
    ['context.attributes["device"]', { context: { attributes: { device: '' } } }],
    ['context.attributes["device"]', { context: { attributes: { device: 'y'.repeat(13) } } }],
    ['filter.include_categories', { filter: { includeCategories: ['a', 'b', 'c'] } }],
    ['filter.include_categories[1]', { filter: { includeCategories: ['a', ''] } }],
    ['filter.exclude_categories[0]', { filter: { excludeCategories: ['z'.repeat(13)] } }],
    ['filter.exclude_item_ids[0]', { filter: { excludeItemIds: ['\u0000'] } }],
  ])('names %s', (field, init) => {
    expect(recommendField(init)).toBe(field);
  });

  it('says what is wrong, not only where', () => {
    expect(() => validateRecommendRequest(recommend({ k: 51 }), limits)).toThrow('k: must be at most 50 (got 51)');
  });
});

describe('validateFunnel', () => {
  const maxima = { retrieved: 1000, rank: 300 };
  const funnel = (init: { retrieved?: number; preRanked?: number; ranked?: number }) => create(gateway.FunnelSizesSchema, init);
  const problem = (init: { retrieved?: number; preRanked?: number; ranked?: number }, k = 20) => {
    try {
      validateFunnel(funnel(init), k, maxima);
      return undefined;
    } catch (error) {
      if (error instanceof InvalidArgumentError) return error.message;
      throw error;
    }
  };

  it("accepts no funnel, zeros (the gateway's counts) and ordered sizes within the maxima", () => {
    expect(() => validateFunnel(undefined, 20, maxima)).not.toThrow();
    expect(problem({})).toBeUndefined();
    expect(problem({ retrieved: 1000, preRanked: 300, ranked: 100 })).toBeUndefined();
    expect(problem({ retrieved: 200, ranked: 20 })).toBeUndefined();
    expect(problem({ preRanked: 20 })).toBeUndefined();
  });

  it.each<[string, { retrieved?: number; preRanked?: number; ranked?: number }]>([
    ['funnel.retrieved: must be an integer >= 0', { retrieved: -1 }],
    ["funnel.retrieved: must be at most 1000, the gateway's RETRIEVE_MAX (got 1001)", { retrieved: 1001 }],
    ["funnel.pre_ranked: must be at most 300, the gateway's RANK_MAX (got 301)", { preRanked: 301 }],
    ['funnel.ranked: must be at most 300', { ranked: 400 }],
    ['funnel.pre_ranked: must be at most funnel.retrieved (100) (got 200)', { retrieved: 100, preRanked: 200 }],
    ['funnel.ranked: must be at most funnel.pre_ranked (50) (got 60)', { preRanked: 50, ranked: 60 }],
    ['funnel.ranked: must be at most funnel.retrieved (50) (got 60)', { retrieved: 50, ranked: 60 }],
    ['funnel.ranked: must be at least k (20) (got 10)', { retrieved: 100, ranked: 10 }],
  ])('refuses with "%s"', (message, init) => {
    expect(problem(init)).toContain(message);
  });
});

type EventInit = NonNullable<Parameters<typeof create<typeof common.FeedbackEventSchema>>[1]>;
const event = (init: EventInit = {}): EventInit => ({ userId: 'u1', itemId: 'i1', eventType: common.EventType.CLICK, ...init });
const feedbackField = (...events: EventInit[]) =>
  fieldOf(() => validateFeedbackRequest(create(gateway.SendFeedbackRequestSchema, { events }), limits));

describe('validateFeedbackRequest', () => {
  it('accepts events with and without ids', () => {
    expect(feedbackField(event({ eventId: 'e1', requestId: 'r1', timestampMs: 5n, dwellSeconds: 3 }), event())).toBeUndefined();
  });

  it.each<[string, EventInit[]]>([
    ['events', []],
    ['events', [event(), event(), event(), event()]],
    ['events[1].user_id', [event(), event({ userId: '' })]],
    ['events[0].item_id', [event({ itemId: '' })]],
    ['events[0].event_type', [event({ eventType: common.EventType.UNSPECIFIED })]],
    ['events[0].event_type', [event({ eventType: 99 as common.EventType })]],
    ['events[0].event_id', [event({ eventId: 'e'.repeat(13) })]],
    ['events[2].event_id', [event({ eventId: 'a' }), event({ eventId: 'b' }), event({ eventId: 'a' })]],
    ['events[0].timestamp_ms', [event({ timestampMs: -1n })]],
    ['events[0].dwell_seconds', [event({ dwellSeconds: Infinity })]],
    ['events[0].request_id', [event({ requestId: 'r'.repeat(13) })]],
  ])('names %s', (field, events) => {
    expect(feedbackField(...events)).toBe(field);
  });

  it('names the first event an id repeats', () => {
    const req = create(gateway.SendFeedbackRequestSchema, { events: [event({ eventId: 'a' }), event({ eventId: 'a' })] });
    expect(() => validateFeedbackRequest(req, limits)).toThrow('events[1].event_id: "a" repeats events[0].event_id');
  });
});

describe('withEventIds', () => {
  it('fills only missing ids, with distinct UUIDs, and leaves the request alone', () => {
    const req = create(gateway.SendFeedbackRequestSchema, { events: [event({ eventId: 'keep' }), event(), event()] });
    const filled = withEventIds(req);
    const ids = filled.events.map((e) => e.eventId);
    expect(ids[0]).toBe('keep');
    expect(ids[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(ids).size).toBe(3);
    expect(req.events[1]!.eventId).toBe('');
    expect(() => validateFeedbackRequest(filled, { ...limits, maxIdLength: 64 })).not.toThrow();
  });
});

describe('validateSimilarRequest', () => {
  const similarField = (init: Parameters<typeof create<typeof gateway.GetSimilarItemsRequestSchema>>[1]) =>
    fieldOf(() => validateSimilarRequest(create(gateway.GetSimilarItemsRequestSchema, { itemId: 'i1', ...init }), limits));

  it('accepts a plain request and names bad fields', () => {
    expect(similarField({ k: 5, filter: { excludeCategories: ['x'] } })).toBeUndefined();
    expect(similarField({ itemId: '' })).toBe('item_id');
    expect(similarField({ k: 51 })).toBe('k');
    expect(similarField({ filter: { excludeItemIds: ['a', 'b', 'c'] } })).toBe('filter.exclude_item_ids');
  });
});

describe('ids with lone surrogates (regression: a feedback event with "\\ud800" ids answered 500)', () => {
  it('refuses them naming the field, and accepts a proper surrogate pair', () => {
    const feedback = (userId: string) =>
      fieldOf(() =>
        validateFeedbackRequest(
          create(gateway.SendFeedbackRequestSchema, { events: [{ userId, itemId: 'i1', eventType: common.EventType.CLICK }] }),
          limits,
        ),
      );
    expect(feedback('\ud800')).toBe('events[0].user_id');
    expect(feedback('u\udc00')).toBe('events[0].user_id');
    expect(feedback('u😀')).toBeUndefined();
  });
});
