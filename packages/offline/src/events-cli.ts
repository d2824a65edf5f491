#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { features } from '@recsys/contracts';
import { UsageError } from '@recsys/data';
import { createServiceClient, defaultAddress } from '@recsys/service-kit';
import { parseEventTypes } from './event-log.js';
import { exportEvents } from './events-export.js';
import { eventsReport } from './events-report.js';

const usage = `usage: recsys-events export --since TIME --until TIME --out DIR [--window DURATION] [--positive TYPES] [--test-fraction F] [--address HOST:PORT]
       recsys-events report --since TIME --until TIME [--k N] [--click-types TYPES] [--conversion-types TYPES] [--out FILE] [--address HOST:PORT]

export   turns the feature service's event log (served answers and feedback) into the trainer's dataset files
         (recsys train --data files:DIR): users.jsonl, items.csv, interactions.csv (positive feedback 1, shown
         items without positive feedback within the window 0), interactions-train.csv / interactions-test.csv
         (a time split) and export.json (counts, the split)
report   online metrics per served version as JSON (stdout, or --out FILE): answers, CTR@k, conversion@k,
         joined by request id

  --since, --until   Unix ms, an ISO-8601 date, "now", or now minus a duration ("now-24h", "now-30m")
  --window D         export: how long after an answer positive feedback makes an item a positive (default 1h);
                     items shown less than D before --until are left out (their outcome is not known yet)
  --positive TYPES   export: positive feedback types (default VIEW,CLICK,ADD_TO_CART,PURCHASE,LIKE); DISLIKE is 0
  --test-fraction F  export: the latest share of interactions in the test split (default 0.2)
  --k N              report: the top k of CTR@k (default 10)
  --click-types, --conversion-types   report: default CLICK and PURCHASE
  --address          feature service (default: $FEATURES_ADDRESS or ${defaultAddress('features')})
  --timeout MS       per call (default 30000)`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "30m", "1h", "7d", "500ms" as ms. */
function parseDuration(flag: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new UsageError(`${flag}: expected a duration such as 30m, 1h or 7d, got "${text}"`);
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}

/** Unix ms, an ISO-8601 date, "now" or "now-<duration>". */
function parseTime(flag: string, text: string, now: number): number {
  const trimmed = text.trim();
  if (trimmed === 'now') return now;
  if (trimmed.startsWith('now-')) return now - parseDuration(flag, trimmed.slice('now-'.length));
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const ms = Date.parse(trimmed);
  if (trimmed === '' || Number.isNaN(ms))
    throw new UsageError(`${flag}: expected Unix ms, an ISO-8601 date, "now" or "now-DURATION" (e.g. now-24h), got "${text}"`);
  return ms;
}

function positiveNumber(flag: string, text: string, { integer = false, max = Infinity } = {}): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max || (integer && !Number.isInteger(n)))
    throw new UsageError(
      `${flag}: expected a ${integer ? 'whole ' : ''}number above 0${max < Infinity ? ` and at most ${max}` : ''}, got "${text}"`,
    );
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h') {
    console.log(usage);
    return 0;
  }
  if (command !== 'export' && command !== 'report') {
    console.error(
      `${command === undefined ? 'a command is required' : `unknown command "${command}"`}: expected export or report\n${usage}`,
    );
    return 2;
  }
  let values;
  let timeoutMs: number;
  let sinceMs: number;
  let untilMs: number;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        out: { type: 'string' },
        window: { type: 'string', default: '1h' },
        positive: { type: 'string' },
        'test-fraction': { type: 'string', default: '0.2' },
        k: { type: 'string', default: '10' },
        'click-types': { type: 'string', default: 'CLICK' },
        'conversion-types': { type: 'string', default: 'PURCHASE' },
        address: { type: 'string', default: process.env.FEATURES_ADDRESS ?? defaultAddress('features') },
        timeout: { type: 'string', default: '30000' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const now = Date.now();
    if (values.since === undefined) throw new UsageError('--since is required');
    if (values.until === undefined) throw new UsageError('--until is required');
    sinceMs = parseTime('--since', values.since, now);
    untilMs = parseTime('--until', values.until, now);
    if (untilMs < sinceMs)
      throw new UsageError(`--until (${new Date(untilMs).toISOString()}) is before --since (${new Date(sinceMs).toISOString()})`);
    timeoutMs = positiveNumber('--timeout', values.timeout, { integer: true });
    if (command === 'export' && values.out === undefined) throw new UsageError('--out DIR is required');
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return 2;
  }
  let options;
  try {
    options =
      command === 'export'
        ? {
            windowMs: parseDuration('--window', values.window),
            positiveTypes: values.positive === undefined ? undefined : parseEventTypes('--positive', values.positive),
            testFraction: positiveNumber('--test-fraction', values['test-fraction'], { max: 0.99 }),
          }
        : {
            k: positiveNumber('--k', values.k, { integer: true, max: 10000 }),
            clickTypes: parseEventTypes('--click-types', values['click-types']),
            conversionTypes: parseEventTypes('--conversion-types', values['conversion-types']),
          };
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    return 2;
  }
  const client = createServiceClient(features.FeatureService, values.address, { defaultTimeoutMs: timeoutMs });
  try {
    if (command === 'export') {
      const summary = await exportEvents(client, { sinceMs, untilMs, outDir: values.out!, ...(options as object) } as Parameters<
        typeof exportEvents
      >[1]);
      console.error(
        `exported ${summary.interactions} interactions (${summary.positives} positive, ${summary.negatives} negative, ${summary.pending} pending) ` +
          `from ${summary.impressions} answers and ${summary.feedback_events} feedback events; ${summary.users} users, ${summary.items} items; ` +
          `split ${summary.split.train_rows} train / ${summary.split.test_rows} test → ${values.out}`,
      );
      console.log(JSON.stringify(summary));
    } else {
      const report = await eventsReport(client, { sinceMs, untilMs, ...(options as object) });
      const text = JSON.stringify(report, null, 2);
      if (values.out !== undefined) writeFileSync(values.out, text + '\n');
      console.log(text);
    }
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`recsys-events ${command}: ${message} (feature service at ${values.address})`);
    return 1;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
