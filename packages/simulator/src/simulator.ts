import { type Dataset, type Interactions, Random, writeDatasetFiles } from '@recsys/data';
import type { SimulatedWorld } from './world.js';

export interface SimulateOptions {
  /** The gateway's REST base URL, e.g. http://127.0.0.1:8080. */
  gateway: string;
  /** Sent as `Authorization: Bearer KEY` when the gateway checks keys. */
  apiKey?: string;
  world: SimulatedWorld;
  /** Recommendation requests, each from a user drawn uniformly. */
  requests: number;
  /** Items asked for per request (CTR@k is over them); default 10. */
  k?: number;
  /** Requests in flight at once; default 8. */
  concurrency?: number;
  seed: number;
  /** Simulated Unix seconds of the first request; the requests spread over `seconds` (default one day). */
  startTime: number;
  seconds?: number;
  /** Feedback without a timestamp (the gateway's receiving time) instead of the simulated one. */
  realTime?: boolean;
  /** Per-request timeout, ms; default 10 000. */
  timeoutMs?: number;
}

/** One shown item and what the simulated user did with it (value 1 click, 0 no click), at simulated time. */
export interface SimulatedImpression {
  user: number;
  item: number;
  position: number;
  click: boolean;
  purchase: boolean;
  timestamp: number;
  requestId: string;
}

export interface SimulationResult {
  requests: number;
  /** Requests the gateway did not answer with 200 (not counted in the impressions). */
  failedRequests: number;
  impressions: number;
  clicks: number;
  purchases: number;
  /** Clicks per impression over the k shown. */
  ctrAtK: number;
  /** Purchases per click. */
  conversion: number;
  /** Feedback events the gateway accepted (clicks and purchases, each with its request id); a retried repeat counts once. */
  feedbackAccepted: number;
  /** Feedback posts retried after a 503 or 429. */
  feedbackRetries: number;
  /** Every impression, for the simulator's own record of what it saw (see windowDataset). */
  shown: SimulatedImpression[];
  seconds: number;
}

const FEEDBACK_ATTEMPTS = 6;

interface RecommendAnswer {
  request_id: string;
  items: { item_id: string }[];
}

/**
 * Simulated users call the gateway's REST API: each request asks for k items, the user reacts to every shown
 * item by the world's planted tastes, and its clicks and purchases go back as feedback with the answer's request id.
 */
export async function simulate(options: SimulateOptions): Promise<SimulationResult> {
  const started = performance.now();
  const { world, requests, seed } = options;
  const k = options.k ?? 10;
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(requests) || requests < 1) throw new Error(`simulate: requests must be a whole number >= 1, got ${requests}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`simulate: k must be a whole number >= 1, got ${k}`);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(`simulate: concurrency must be a whole number >= 1, got ${concurrency}`);
  const span = options.seconds ?? 86_400;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const base = options.gateway.replace(/\/+$/, '');
  const { users, items } = world.dataset;
  // Each request draws from its own stream, so the result does not depend on the order answers arrive in.
  const plan = Array.from({ length: requests }, (_, j) => ({ j, user: new Random(seed * 1_000_003 + j).int(users.ids.length) }));

  const result: SimulationResult = {
    requests,
    failedRequests: 0,
    impressions: 0,
    clicks: 0,
    purchases: 0,
    ctrAtK: 0,
    conversion: 0,
    feedbackAccepted: 0,
    feedbackRetries: 0,
    shown: [],
    seconds: 0,
  };
  const post = async (path: string, body: unknown): Promise<Response> =>
    fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });

  const one = async ({ j, user }: { j: number; user: number }): Promise<void> => {
    const random = new Random(seed * 7_919 + j + 1);
    const timestamp = options.startTime + Math.floor((j / requests) * span);
    const userId = users.ids[user]!;
    let answer: RecommendAnswer;
    try {
      const response = await post('/v1/recommendations', { user_id: userId, k });
      if (response.status !== 200) {
        result.failedRequests++;
        await response.body?.cancel();
        return;
      }
      answer = (await response.json()) as RecommendAnswer;
    } catch {
      result.failedRequests++;
      return;
    }
    const events: Record<string, unknown>[] = [];
    answer.items.forEach(({ item_id }, position) => {
      const item = items.index.get(item_id);
      if (item === undefined) return;
      const { click, purchase } = world.react(user, item, random);
      result.impressions++;
      result.shown.push({ user, item, position, click, purchase, timestamp, requestId: answer.request_id });
      const event = (type: string) => ({
        event_id: `sim-${seed}-${j}-${position}-${type}`,
        user_id: userId,
        item_id,
        event_type: type,
        ...(options.realTime ? {} : { timestamp_ms: timestamp * 1000 }),
        request_id: answer.request_id,
      });
      if (click) {
        result.clicks++;
        events.push(event('click'));
      }
      if (purchase) {
        result.purchases++;
        events.push(event('purchase'));
      }
    });
    if (events.length === 0) return;
    // As a client should: a 503 or 429 ("retry") is retried with backoff; the event ids make a repeat a duplicate.
    for (let attempt = 1; ; attempt++) {
      const response = await post('/v1/feedback', { events });
      if (response.status === 200) {
        const counts = (await response.json()) as { accepted: number; duplicates: number };
        result.feedbackAccepted += counts.accepted + counts.duplicates;
        return;
      }
      const text = await response.text();
      if ((response.status !== 503 && response.status !== 429) || attempt === FEEDBACK_ATTEMPTS)
        throw new Error(`POST /v1/feedback: ${response.status} ${text} (attempt ${attempt})`);
      result.feedbackRetries++;
      await new Promise((done) => setTimeout(done, 50 * 2 ** attempt));
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < plan.length) await one(plan[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.length) }, worker));
  result.shown.sort((a, b) => a.timestamp - b.timestamp || a.position - b.position);
  result.ctrAtK = result.impressions === 0 ? 0 : result.clicks / result.impressions;
  result.conversion = result.clicks === 0 ? 0 : result.purchases / result.clicks;
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/**
 * CTR@k of a recommender that needs no gateway, by the same simulated users and reactions: `pick` chooses the
 * k items of a request. The loop's baselines: random items, and the ground-truth oracle.
 */
export function offlineCtr(
  world: SimulatedWorld,
  requests: number,
  seed: number,
  pick: (user: number, random: Random) => number[],
): number {
  let shown = 0;
  let clicks = 0;
  for (let j = 0; j < requests; j++) {
    const user = new Random(seed * 1_000_003 + j).int(world.users);
    const random = new Random(seed * 7_919 + j + 1);
    for (const item of pick(user, random)) {
      shown++;
      if (world.react(user, item, random).click) clicks++;
    }
  }
  return shown === 0 ? 0 : clicks / shown;
}

/**
 * The simulator's record of what it was shown and did as dataset files (users and items of the world, impressions
 * with value 1 clicked / 0 not): `base` rows first, then `shown`. A window the trainer reads with files:DIR.
 */
export function writeWindow(dir: string, base: Dataset, shown: readonly SimulatedImpression[]): void {
  const b = base.interactions;
  const n = b.length + shown.length;
  const interactions: Interactions = {
    length: n,
    user: new Int32Array(n),
    item: new Int32Array(n),
    value: new Float32Array(n),
    timestamp: new Float64Array(n),
    context: {},
  };
  interactions.user.set(b.user);
  interactions.item.set(b.item);
  interactions.value.set(b.value);
  interactions.timestamp.set(b.timestamp);
  shown.forEach((s, k) => {
    const r = b.length + k;
    interactions.user[r] = s.user;
    interactions.item[r] = s.item;
    interactions.value[r] = s.click ? 1 : 0;
    interactions.timestamp[r] = s.timestamp;
  });
  writeDatasetFiles({ ...base, interactions }, dir);
}
