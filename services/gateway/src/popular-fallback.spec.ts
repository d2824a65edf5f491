import { create, toBinary } from '@bufbuild/protobuf';
import { common, features } from '@recsys/contracts';
import { createLogger, ServiceMetrics } from '@recsys/service-kit';
import { GatewayMetrics } from './gateway-metrics.js';
import { PopularFallback } from './popular-fallback.js';

const logger = createLogger('test', 'silent');

/** What the fallback stood for before it wrote bytes itself: protobuf-es Candidates, as retrieval's popular channel has them. */
const expectedBytes = (itemId: string, score: number) =>
  toBinary(
    common.CandidateSchema,
    create(common.CandidateSchema, { itemId, score, channels: ['popular'], stageScores: [{ stage: common.Stage.RETRIEVAL, score }] }),
  );

/**
 * The feature service's GetPopularItems as a scripted answer (a test double of one RPC's answer, for the encoding; the
 * real feature service answers it in gateway-app.spec.ts and test/e2e).
 */
function fallback(items: { itemId: string; score: number }[], live: { fail: boolean }) {
  const asked: features.GetPopularItemsRequest[] = [];
  const client = {
    getPopularItems: async (request: object) => {
      asked.push(create(features.GetPopularItemsRequestSchema, request));
      if (live.fail) throw new Error('features down');
      return create(features.GetPopularItemsResponseSchema, { items });
    },
  };
  const metrics = new GatewayMetrics(new ServiceMetrics('gateway'));
  return { popular: new PopularFallback(client as never, { limit: 10, refreshMs: 60_000, timeoutMs: 100 }, metrics, logger), asked };
}

describe('PopularFallback: popular items in place of retrieval, as candidate bytes', () => {
  const items = [
    { itemId: 'i-1', score: 9.5 },
    { itemId: 'ü-2', score: 0.25 },
    { itemId: 'i-3', score: 0 },
    { itemId: 'i-4', score: 3 },
  ];

  it('writes the live answer byte for byte as protobuf-es writes the same Candidates', async () => {
    const { popular, asked } = fallback(items, { fail: false });
    const answer = await popular.candidates(3, undefined, new Set(['i-3']), 50);
    expect(answer.source).toBe('live');
    expect(asked[0]).toMatchObject({ limit: 3, filter: { excludeItemIds: ['i-3'] } });
    expect(answer.candidates.ids).toEqual(items.map((i) => i.itemId));
    items.forEach((item, k) => expect(Buffer.from(answer.candidates.span(k))).toEqual(Buffer.from(expectedBytes(item.itemId, item.score))));
    expect(answer.candidates.decode(1)).toMatchObject({ itemId: 'ü-2', score: 0.25, channels: ['popular'] });
  });

  it('serves the refreshed list when the live read fails: excluded items left out, at most the limit, the same bytes', async () => {
    const live = { fail: false };
    const { popular } = fallback(items, live);
    await popular.refresh();
    live.fail = true;
    const answer = await popular.candidates(2, undefined, new Set(['i-1']), 50);
    expect(answer.source).toBe('cached');
    expect(answer.candidates.ids).toEqual(['ü-2', 'i-3']);
    expect([0, 1].map((k) => Buffer.from(answer.candidates.span(k)))).toEqual([
      Buffer.from(expectedBytes('ü-2', 0.25)),
      Buffer.from(expectedBytes('i-3', 0)),
    ]);
    // No time left for a live read: the refreshed list at once.
    expect((await popular.candidates(10, undefined, new Set(), 0)).candidates.ids).toEqual(items.map((i) => i.itemId));
  });

  it('has nothing to stand in with category filters once the feature service fails, nor before any refresh', async () => {
    const live = { fail: false };
    const { popular } = fallback(items, live);
    await popular.refresh();
    live.fail = true;
    const filtered = await popular.candidates(5, create(common.ItemFilterSchema, { includeCategories: ['c'] }), new Set(), 50);
    expect(filtered).toMatchObject({ source: 'none' });
    expect(filtered.candidates.length).toBe(0);
    const cold = fallback(items, { fail: true }).popular;
    expect((await cold.candidates(5, undefined, new Set(), 50)).source).toBe('none');
  });
});
