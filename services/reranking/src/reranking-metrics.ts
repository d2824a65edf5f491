import type { ServiceMetrics } from '@recsys/service-kit';
import type { ReadObserver } from './feature-source.js';
import type { RuleObserver } from './rule-engine.js';

/** Per-rule Prometheus counters, registered in the service's own registry before it starts. */
export class RerankingMetrics implements RuleObserver, ReadObserver {
  private readonly runs;
  private readonly removed;
  private readonly changed;
  private readonly errors;
  private readonly readFailures;

  constructor(metrics: ServiceMetrics) {
    this.runs = metrics.counter('reranking_rule_runs_total', 'Rule runs, by rule', ['rule']);
    this.removed = metrics.counter('reranking_rule_removed_items_total', 'Items a rule removed, by rule', ['rule']);
    this.changed = metrics.counter('reranking_rule_changed_items_total', 'Items a rule moved, inserted or re-scored, by rule', ['rule']);
    this.errors = metrics.counter(
      'reranking_rule_errors_total',
      'Rule runs that reported an error (a failed read, a failed rule), by rule',
      ['rule'],
    );
    this.readFailures = metrics.counter(
      'reranking_feature_read_failures_total',
      'Feature-service reads that failed after their retries, by method',
      ['method'],
    );
  }

  ruleRan(rule: string, removed: number, changed: number, failed: boolean): void {
    this.runs.inc({ rule });
    if (removed > 0) this.removed.inc({ rule }, removed);
    if (changed > 0) this.changed.inc({ rule }, changed);
    if (failed) this.errors.inc({ rule });
  }

  readFailed(method: string): void {
    this.readFailures.inc({ method });
  }
}
