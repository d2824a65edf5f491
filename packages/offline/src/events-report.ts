import { common } from '@recsys/contracts';
import { readEventLog, versionsKey, type EventLogSource } from './event-log.js';

export interface EventsReportOptions {
  sinceMs: number;
  untilMs: number;
  /** CTR@k counts items shown at positions below k. */
  k?: number;
  /** Feedback types that count as a click (default CLICK). */
  clickTypes?: readonly common.EventType[];
  /** Feedback types that count as a conversion (default PURCHASE). */
  conversionTypes?: readonly common.EventType[];
  pageSize?: number;
}

export interface VersionReport {
  versions: { retrieval_model: string; index: string; preranking_model: string; ranking_model: string };
  /** Answers these versions served (logged impressions). */
  answers: number;
  /** Items shown at positions below k. */
  shown_at_k: number;
  /** Of those, items the user clicked (feedback naming the answer's request id), once per (answer, item). */
  clicks_at_k: number;
  /** clicks_at_k / shown_at_k (0 when nothing was shown). */
  ctr_at_k: number;
  /** Answers with at least one click in their top k, over answers. */
  answer_ctr_at_k: number;
  /** Items shown at positions below k that converted, once per (answer, item). */
  conversions_at_k: number;
  /** conversions_at_k / shown_at_k. */
  conversion_rate_at_k: number;
}

export interface EventsReport {
  since_ms: number;
  until_ms: number;
  k: number;
  click_types: string[];
  conversion_types: string[];
  answers: number;
  feedback_events: number;
  /** Feedback events naming the request id of an answer in the range (the rest cannot be joined). */
  attributed_feedback: number;
  /** One entry per set of served versions, most answers first. */
  by_version: VersionReport[];
}

/**
 * Online metrics per served version from the event log: each answer's items joined with the feedback that
 * names its request id. The same join the feature service counts live (recsys_online_* metrics), exact here.
 */
export async function eventsReport(source: EventLogSource, options: EventsReportOptions): Promise<EventsReport> {
  const k = options.k ?? 10;
  const clickTypes = new Set(options.clickTypes ?? [common.EventType.CLICK]);
  const conversionTypes = new Set(options.conversionTypes ?? [common.EventType.PURCHASE]);
  const log = await readEventLog(source, options.sinceMs, options.untilMs, options.pageSize);
  const clicked = new Set<string>();
  const converted = new Set<string>();
  const answered = new Set(log.impressions.map((i) => i.impression.requestId));
  let attributed = 0;
  for (const { event } of log.feedback) {
    if (event.requestId === '' || !answered.has(event.requestId)) continue;
    attributed++;
    const key = `${event.requestId}\u0000${event.itemId}`;
    if (clickTypes.has(event.eventType)) clicked.add(key);
    if (conversionTypes.has(event.eventType)) converted.add(key);
  }
  const groups = new Map<string, VersionReport & { answersWithClick: number }>();
  for (const { impression } of log.impressions) {
    const key = versionsKey(impression.versions);
    let group = groups.get(key);
    if (!group) {
      const v = impression.versions;
      group = {
        versions: {
          retrieval_model: v?.retrievalModel ?? '',
          index: v?.index ?? '',
          preranking_model: v?.prerankingModel ?? '',
          ranking_model: v?.rankingModel ?? '',
        },
        answers: 0,
        shown_at_k: 0,
        clicks_at_k: 0,
        ctr_at_k: 0,
        answer_ctr_at_k: 0,
        conversions_at_k: 0,
        conversion_rate_at_k: 0,
        answersWithClick: 0,
      };
      groups.set(key, group);
    }
    group.answers++;
    let anyClick = false;
    for (const item of impression.items) {
      if (item.position >= k) continue;
      group.shown_at_k++;
      const at = `${impression.requestId}\u0000${item.itemId}`;
      if (clicked.has(at)) {
        group.clicks_at_k++;
        anyClick = true;
      }
      if (converted.has(at)) group.conversions_at_k++;
    }
    if (anyClick) group.answersWithClick++;
  }
  const byVersion = [...groups.values()]
    .map(({ answersWithClick, ...g }) => ({
      ...g,
      ctr_at_k: g.shown_at_k > 0 ? g.clicks_at_k / g.shown_at_k : 0,
      answer_ctr_at_k: g.answers > 0 ? answersWithClick / g.answers : 0,
      conversion_rate_at_k: g.shown_at_k > 0 ? g.conversions_at_k / g.shown_at_k : 0,
    }))
    .sort((a, b) => b.answers - a.answers);
  return {
    since_ms: options.sinceMs,
    until_ms: options.untilMs,
    k,
    click_types: [...clickTypes].map((t) => common.EventType[t]),
    conversion_types: [...conversionTypes].map((t) => common.EventType[t]),
    answers: log.impressions.length,
    feedback_events: log.feedback.length,
    attributed_feedback: attributed,
    by_version: byVersion,
  };
}
