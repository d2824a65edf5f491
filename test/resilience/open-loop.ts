// An open-loop load generator for POST /v1/recommendations (or --path) (run as its own process by overload.ts): requests leave at
// a fixed rate whatever the answers do, and each latency is measured from the moment its request was due, not sent
// (as wrk2 does), so a server that falls behind is not hidden by a generator that waits for it (coordinated omission).
// --mode closed instead keeps --concurrency requests in flight (capacity). The last output line is one JSON object.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { quantile, round } from '../bench/stats';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    path: { type: 'string', default: '/v1/recommendations' },
    key: { type: 'string', default: '' },
    mode: { type: 'string', default: 'open' },
    rate: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '16' },
    'duration-s': { type: 'string', default: '10' },
    users: { type: 'string', default: '400' },
    k: { type: 'string', default: '20' },
    'timeout-ms': { type: 'string', default: '5000' },
  },
});

const base = new URL(values.url!);
const rate = Number(values.rate);
const concurrency = Number(values.concurrency);
const durationMs = Number(values['duration-s']) * 1000;
const users = Number(values.users);
const k = Number(values.k);
const timeoutMs = Number(values['timeout-ms']);
const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });
const headers: Record<string, string> = { 'content-type': 'application/json' };
if (values.key) headers.authorization = `Bearer ${values.key}`;

const answeredMs: number[] = [];
/** The answered requests' latencies apart: clean, and with a fallback (a stage late or down: cut at its deadline). */
const cleanMs: number[] = [];
const fallbackMs: number[] = [];
/** The gateway's own time of each answer (its Server-Timing header) and the rest (network, queues before it read the request, the generator). */
const serverMs: number[] = [];
const outsideMs: number[] = [];
const shedMs: number[] = [];
/** How late each request left the generator after it was due: the generator's own share of every latency. */
const sendLagMs: number[] = [];
const statuses: Record<string, number> = {};
let sent = 0;
let degraded = 0;
let inFlight = 0;
let seed = 7919;
const nextUser = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return `user-${1 + (seed % users)}`;
};

/** The fallbacks answered with, by "stage cause" ("ranking DEADLINE_EXCEEDED"): which stage gave way and why. */
const fallbacks: Record<string, number> = {};
function countFallbacks(text: string): void {
  try {
    const { degradations } = JSON.parse(text) as { degradations?: { stage?: string; cause?: string }[] };
    for (const d of degradations ?? []) {
      const key = `${d.stage} ${d.cause}`;
      fallbacks[key] = (fallbacks[key] ?? 0) + 1;
    }
  } catch {
    fallbacks.unreadable = (fallbacks.unreadable ?? 0) + 1;
  }
}

/** One request; resolves with its status ('200', '429', 'timeout', ...) when answered, refused or failed; latency from `dueMs`. */
function send(dueMs: number): Promise<string> {
  sent++;
  inFlight++;
  sendLagMs.push(performance.now() - dueMs);
  const body = JSON.stringify({ user_id: nextUser(), k });
  return new Promise((resolve) => {
    const finish = (label: string, text = '', serverDur?: number) => {
      inFlight--;
      statuses[label] = (statuses[label] ?? 0) + 1;
      const latency = performance.now() - dueMs;
      if (label === '200') {
        answeredMs.push(latency);
        if (serverDur !== undefined) {
          serverMs.push(serverDur);
          outsideMs.push(latency - serverDur);
        }
        if (text.includes('"degradations":[]')) cleanMs.push(latency);
        else {
          degraded++;
          fallbackMs.push(latency);
          countFallbacks(text);
        }
      } else if (label === '429') shedMs.push(latency);
      resolve(label);
    };
    const req = http.request(
      { host: base.hostname, port: base.port, path: values.path, method: 'POST', headers, agent, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const server = /total;dur=([0-9.]+)/.exec(String(res.headers['server-timing'] ?? ''));
          finish(String(res.statusCode), Buffer.concat(chunks).toString('utf8'), server ? Number(server[1]) : undefined);
        });
        res.on('error', () => finish('error'));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => finish(error.message === 'timeout' ? 'timeout' : 'error'));
    req.end(body);
  });
}

async function open(): Promise<void> {
  const start = performance.now();
  const pending = new Set<Promise<unknown>>();
  let due = 0;
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const now = performance.now();
      // Every request due by now leaves now, stamped with when it was due.
      while (due < Math.floor(((now - start) * rate) / 1000) && (due * 1000) / rate < durationMs) {
        const p = send(start + (due * 1000) / rate);
        pending.add(p);
        void p.then(() => pending.delete(p));
        due++;
      }
      if (now - start >= durationMs) {
        clearInterval(tick);
        done();
      }
    }, 1);
  });
  await Promise.all(pending);
}

async function closed(): Promise<void> {
  const end = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const status = await send(performance.now());
        // A shed client pauses before it sends again: at once, the loop would be a storm of refusals whose cost is
        // taken from the answers being measured. A short pause, not Retry-After's second: a second idle would leave
        // fewer requests in flight than the gateway admits, and the loop would measure its clients, not the capacity
        // (61 answers/s where the open loop then got 158).
        if (status === '429') await pause(Math.min(SHED_PAUSE_MS, end - performance.now()));
      }
    }),
  );
}

/** How long a shed client of the closed loop waits before it sends again, ms. */
const SHED_PAUSE_MS = 20;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function main(): Promise<void> {
  const started = performance.now();
  await (values.mode === 'closed' ? closed() : open());
  const seconds = durationMs / 1000;
  const answered = answeredMs.length;
  agent.destroy();
  console.log(
    JSON.stringify({
      mode: values.mode,
      offered_qps: round(sent / seconds, 1),
      answered_qps: round(answered / seconds, 1),
      shed_qps: round(shedMs.length / seconds, 1),
      p50_ms: round(quantile(answeredMs, 0.5), 1),
      p99_ms: round(quantile(answeredMs, 0.99), 1),
      p99_clean_ms: round(quantile(cleanMs, 0.99), 1),
      p99_fallback_ms: round(quantile(fallbackMs, 0.99), 1),
      shed_p99_ms: round(quantile(shedMs, 0.99), 1),
      server_p99_ms: round(quantile(serverMs, 0.99), 1),
      outside_p99_ms: round(quantile(outsideMs, 0.99), 1),
      send_lag_p99_ms: round(quantile(sendLagMs, 0.99), 1),
      degraded_pct: round(answered > 0 ? (degraded / answered) * 100 : 0, 1),
      statuses,
      fallbacks,
      in_flight_at_end: inFlight,
      wall_s: round((performance.now() - started) / 1000, 1),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
