import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { common, type features } from '@recsys/contracts';
import { loadDatasetFiles } from '@recsys/data';
import { exportEvents, eventsReport } from '@recsys/offline';
import { builtEntry, runNode } from '@recsys/testing';
import { Redis } from 'ioredis';
import { startTestFeatureService } from '../harness/features';

const MIN = 60_000;
const versions = { retrievalModel: '3', index: '3', prerankingModel: '3', rankingModel: '3' };

function csvRows(path: string): string[][] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(','));
}

async function metricValue(text: string, name: string, labels: Record<string, string>): Promise<number> {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('event log on Redis (feature service over gRPC)', () => {
  it('logs answers and feedback with request ids, attributes feedback per version, and exports labelled interactions with a time split', async () => {
    const { service, client, stop } = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL!, ONLINE_METRICS_K: '2' });
    try {
      await client.upsertUsers({
        users: [
          { userId: 'u1', features: { values: { age: { kind: { case: 'numeric', value: 31 } } } } },
          { userId: 'u2', features: { values: { age: { kind: { case: 'numeric', value: 40 } } } } },
          { userId: 'u9', features: { values: { age: { kind: { case: 'numeric', value: 22 } } } } },
        ],
      });
      await client.upsertItems({
        items: ['i1', 'i2', 'i3', 'i4'].map((itemId, n) => ({
          itemId,
          category: n % 2 === 0 ? 'books' : 'music',
          createdAtMs: 1_700_000_000_000n,
          features: { values: { price: { kind: { case: 'numeric', value: n + 1 } } } },
        })),
      });
      const now = Date.now();
      const t0 = now - 30 * MIN;
      const items = (...ids: string[]) => ids.map((itemId, position) => ({ itemId, position, score: 1 - position / 10 }));
      await client.logImpressions({
        impressions: [
          { requestId: 'r1', userId: 'u1', timestampMs: BigInt(t0), items: items('i1', 'i2', 'i3'), versions },
          {
            requestId: 'r2',
            userId: 'u2',
            timestampMs: BigInt(t0 + MIN),
            items: items('i4', 'i3'),
            versions: { ...versions, rankingModel: '' },
            degradations: [
              { stage: common.Stage.RANKING, cause: common.DegradationCause.DEADLINE_EXCEEDED, fallback: 'pre-ranking order' },
            ],
          },
          // Served a minute ago: its 5-minute window has not ended, so its items are pending.
          { requestId: 'r3', userId: 'u1', timestampMs: BigInt(now - MIN), items: items('i4'), versions },
        ],
      });
      const feedback = await client.recordFeedback({
        events: [
          {
            eventId: 'e1',
            userId: 'u1',
            itemId: 'i1',
            eventType: common.EventType.CLICK,
            timestampMs: BigInt(t0 + 2 * MIN),
            requestId: 'r1',
          },
          {
            eventId: 'e2',
            userId: 'u1',
            itemId: 'i1',
            eventType: common.EventType.PURCHASE,
            timestampMs: BigInt(t0 + 3 * MIN),
            requestId: 'r1',
          },
          // A replay changes nothing (not attributed twice).
          {
            eventId: 'e1',
            userId: 'u1',
            itemId: 'i1',
            eventType: common.EventType.CLICK,
            timestampMs: BigInt(t0 + 2 * MIN),
            requestId: 'r1',
          },
          // No request id: joined to r2 by user and item within the window.
          { eventId: 'e3', userId: 'u2', itemId: 'i4', eventType: common.EventType.CLICK, timestampMs: BigInt(t0 + 2 * MIN) },
          // Outside any answer (organic): a positive of its own.
          { eventId: 'e4', userId: 'u9', itemId: 'i2', eventType: common.EventType.LIKE, timestampMs: BigInt(t0 + 4 * MIN) },
        ],
      });
      expect(feedback.accepted).toBe(4);

      const page = await client.readEventLog({ limit: 100 });
      expect(page.entries).toHaveLength(8);
      const first = page.entries[0]!;
      expect(first.id).toMatch(/^\d+-\d+$/);
      expect(first.event.case).toBe('impression');
      const r1 = first.event.value as features.Impression;
      expect(r1).toMatchObject({ requestId: 'r1', userId: 'u1', timestampMs: BigInt(t0), versions });
      expect(r1.items.map((i) => [i.itemId, i.position])).toEqual([
        ['i1', 0],
        ['i2', 1],
        ['i3', 2],
      ]);
      const loggedFeedback = page.entries.filter((e) => e.event.case === 'feedback').map((e) => e.event.value as common.FeedbackEvent);
      expect(loggedFeedback[0]).toMatchObject({ eventId: 'e1', requestId: 'r1', itemId: 'i1' });
      // Paging: two entries a page, resumed after next_id, ends with an empty next_id.
      const ids: string[] = [];
      let afterId = '';
      do {
        const p = await client.readEventLog({ limit: 3, afterId });
        ids.push(...p.entries.map((e) => e.id));
        afterId = p.nextId;
      } while (afterId !== '');
      expect(ids).toEqual(page.entries.map((e) => e.id));

      // Online metrics: one click and one purchase attributed to r1's versions, within the top 2.
      const metrics = await service.metrics.registry.metrics();
      const v = { retrieval_model: '3', index: '3', preranking_model: '3', ranking_model: '3' };
      expect(await metricValue(metrics, 'recsys_online_feedback_total', { ...v, event_type: 'CLICK', top_k: 'true' })).toBe(1);
      expect(await metricValue(metrics, 'recsys_online_feedback_total', { ...v, event_type: 'PURCHASE', top_k: 'true' })).toBe(1);
      expect(await metricValue(metrics, 'recsys_online_shown_total', v)).toBe(3); // r1: 2 in the top 2, r3: 1
      expect(await metricValue(metrics, 'recsys_online_answers_total', v)).toBe(2);

      const out = mkdtempSync(join(tmpdir(), 'recsys-events-'));
      // The range selects entries by when they were logged (now, whatever time the events carry).
      const until = Date.now();
      const summary = await exportEvents(client, { sinceMs: 0, untilMs: until, outDir: out, windowMs: 5 * MIN, testFraction: 0.4 });
      const rows = csvRows(join(out, 'interactions.csv'));
      const label = (user: string, item: string) => rows.filter(([u, i]) => u === user && i === item).map(([, , value]) => Number(value));
      expect(label('u1', 'i1')).toEqual([1]); // clicked and bought in r1: one positive
      expect(label('u1', 'i2')).toEqual([0]); // shown in r1, never clicked
      expect(label('u1', 'i3')).toEqual([0]);
      expect(label('u2', 'i4')).toEqual([1]); // clicked within the window, no request id
      expect(label('u2', 'i3')).toEqual([0]);
      expect(label('u9', 'i2')).toEqual([1]);
      expect(label('u1', 'i4')).toEqual([]); // pending
      expect(summary).toMatchObject({ positives: 3, negatives: 3, pending: 1, impressions: 3, feedback_events: 4, interactions: 6 });
      // Timestamps in seconds, oldest first; the split puts the latest 40% in test.
      const times = rows.map((r) => Number(r[3]));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(times[0]).toBeCloseTo(t0 / 1000, 3);
      const train = csvRows(join(out, 'interactions-train.csv'));
      const test = csvRows(join(out, 'interactions-test.csv'));
      expect(train.length + test.length).toBe(6);
      expect(test.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...train.map((r) => Number(r[3])))).toBeLessThanOrEqual(Math.min(...test.map((r) => Number(r[3]))));
      expect(summary.split).toMatchObject({ kind: 'time', train_rows: train.length, test_rows: test.length });
      // Users and items the feature service holds, with their features.
      const users = readFileSync(join(out, 'users.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { user_id: string });
      expect(users.map((u) => u.user_id).sort()).toEqual(['u1', 'u2', 'u9']);
      expect(readFileSync(join(out, 'items.csv'), 'utf8')).toMatch(/^item_id,category,created_at,price:num\n/);
      expect(JSON.parse(readFileSync(join(out, 'export.json'), 'utf8'))).toMatchObject({ format: 'recsys.events-export.v1' });
      // What the trainer reads (--data files:DIR).
      const dataset = loadDatasetFiles(out);
      expect(dataset.interactions.length).toBe(6);
      expect(dataset.users.ids).toHaveLength(3);
      expect(dataset.items.columns.price?.kind).toBe('numeric');

      const report = await eventsReport(client, { sinceMs: 0, untilMs: until, k: 2 });
      const served = report.by_version.find((g) => g.versions.ranking_model === '3')!;
      expect(served).toMatchObject({ answers: 2, shown_at_k: 3, clicks_at_k: 1, conversions_at_k: 1 });
      expect(served.ctr_at_k).toBeCloseTo(1 / 3, 6);
      expect(served.answer_ctr_at_k).toBeCloseTo(1 / 2, 6);
    } finally {
      await stop();
    }
  });

  it('keeps the stream within the retention', async () => {
    const prefix = `ret${Date.now()}:`;
    const { client, stop } = await startTestFeatureService({
      REDIS_URL: process.env.REDIS_TEST_URL!,
      REDIS_KEY_PREFIX: prefix,
      EVENT_LOG_RETENTION_HOURS: String(2 / 3600), // two seconds
    });
    const redis = new Redis(process.env.REDIS_TEST_URL!);
    try {
      const impression = (requestId: string) => ({
        requestId,
        userId: 'u1',
        timestampMs: BigInt(Date.now()),
        items: [{ itemId: 'i1', position: 0 }],
      });
      await client.logImpressions({ impressions: Array.from({ length: 50 }, (_, n) => impression(`old${n}`)) });
      expect(await redis.xlen(`${prefix}log`)).toBe(50);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await client.logImpressions({ impressions: [impression('new')] });
      expect(await redis.xlen(`${prefix}log`)).toBe(1);
      const page = await client.readEventLog({});
      expect(page.entries.map((e) => (e.event.value as { requestId: string }).requestId)).toEqual(['new']);
    } finally {
      redis.disconnect();
      await stop();
    }
  });

  it('recsys-events refuses bad arguments naming the flag', async () => {
    const cli = builtEntry('packages/offline/dist/events-cli.js');
    const missing = await runNode(cli, ['export', '--since', 'now-1h', '--until', 'now']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--out DIR is required');
    const badTime = await runNode(cli, ['export', '--since', 'yesterday', '--until', 'now', '--out', '/tmp/x']);
    expect(badTime.stderr).toContain('--since: expected Unix ms, an ISO-8601 date');
    const reversed = await runNode(cli, ['report', '--since', 'now', '--until', 'now-1h']);
    expect(reversed.stderr).toContain('is before --since');
    const badWindow = await runNode(cli, ['export', '--since', 'now-1h', '--until', 'now', '--out', '/tmp/x', '--window', '5']);
    expect(badWindow.stderr).toContain('--window: expected a duration');
    const badType = await runNode(cli, ['report', '--since', 'now-1h', '--until', 'now', '--click-types', 'CLIK']);
    expect(badType.stderr).toContain('--click-types: unknown event type "CLIK"');
    const command = await runNode(cli, ['exprot']);
    expect(command.stderr).toContain('unknown command "exprot"');
    // Six CLI processes: on a loaded machine each start takes seconds.
  }, 120_000);
});
