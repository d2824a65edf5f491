import { common, type features } from '@recsys/contracts';
import type { ServiceMetrics } from '@recsys/service-kit';
import type { Attribution } from './store/index.js';

type Counter = ReturnType<ServiceMetrics['counter']>;

const VERSION_LABELS = ['retrieval_model', 'index', 'preranking_model', 'ranking_model'] as const;

function versionLabels(versions: features.ServedVersions | undefined): Record<(typeof VERSION_LABELS)[number], string> {
  return {
    retrieval_model: versions?.retrievalModel ?? '',
    index: versions?.index ?? '',
    preranking_model: versions?.prerankingModel ?? '',
    ranking_model: versions?.rankingModel ?? '',
  };
}

/**
 * The event log's metrics and the online metrics per served version. CTR@k of a version is
 * `recsys_online_feedback_total{event_type="CLICK",top_k="true"}` over `recsys_online_shown_total`, conversion the
 * same with PURCHASE; both are counted once per (answer, item, event type), joined by request id.
 */
export class EventMetrics {
  readonly logged: Counter;
  readonly logFailures: Counter;
  readonly answers: Counter;
  readonly shown: Counter;
  readonly feedback: Counter;

  constructor(
    metrics: ServiceMetrics,
    private readonly k: number,
  ) {
    this.logged = metrics.counter('recsys_event_log_entries_total', 'Entries appended to the event log, by kind', ['kind']);
    this.logFailures = metrics.counter(
      'recsys_event_log_failures_total',
      'Log entries lost because the store could not take them (the call itself did not fail for it), by kind',
      ['kind'],
    );
    this.answers = metrics.counter('recsys_online_answers_total', 'Served answers logged, by the versions that served them', [
      ...VERSION_LABELS,
    ]);
    this.shown = metrics.counter(
      'recsys_online_shown_total',
      'Items shown in the top k of logged answers (ONLINE_METRICS_K), by versions',
      [...VERSION_LABELS],
    );
    this.feedback = metrics.counter(
      'recsys_online_feedback_total',
      'Feedback attributed to a logged answer by its request id, once per (answer, item, event type), by versions, type and whether the item was in the top k',
      [...VERSION_LABELS, 'event_type', 'top_k'],
    );
  }

  impressions(impressions: readonly features.Impression[]): void {
    this.logged.inc({ kind: 'impression' }, impressions.length);
    for (const impression of impressions) {
      const labels = versionLabels(impression.versions);
      this.answers.inc(labels);
      const top = impression.items.filter((item) => item.position < this.k).length;
      if (top > 0) this.shown.inc(labels, top);
    }
  }

  attributed(events: readonly common.FeedbackEvent[], attributions: readonly (Attribution | undefined)[]): void {
    this.logged.inc({ kind: 'feedback' }, events.length);
    attributions.forEach((attribution, i) => {
      if (!attribution) return;
      this.feedback.inc({
        ...versionLabels(attribution.versions),
        event_type: common.EventType[events[i]!.eventType] ?? String(events[i]!.eventType),
        top_k: attribution.position < this.k ? 'true' : 'false',
      });
    });
  }
}
