import type { ModelReloadEvent } from '@recsys/serving';
import type { ServiceMetrics } from '@recsys/service-kit';

interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void;
}
type CounterClass = new (config: { name: string; help: string; labelNames?: string[]; registers: unknown[] }) => CounterLike;

interface Exported {
  reloads: CounterLike;
  unknownItems: CounterLike;
  userEmbeddings: CounterLike;
}

/**
 * The pre-ranking stage's metrics: model reloads, candidates without a two-tower vector, and where user
 * embeddings came from. They join the service's Prometheus registry once it exists (`attach`); the first
 * model load, which happens before, is counted then.
 */
export class PrerankingMetrics {
  private exported: Exported | undefined;
  private readonly early: ModelReloadEvent[] = [];

  attach(serviceMetrics: ServiceMetrics): void {
    // prom-client's Counter, reached through the service's own metrics: the stage does not depend on prom-client itself.
    const Counter = serviceMetrics.handled.constructor as CounterClass;
    const registers = [serviceMetrics.registry];
    this.exported = {
      reloads: new Counter({
        name: 'preranking_model_reloads_total',
        help: 'Model versions loaded or refused',
        labelNames: ['outcome'],
        registers,
      }),
      unknownItems: new Counter({
        name: 'preranking_unknown_items_total',
        help: 'Candidates the two-tower has no vector for, scored with a zero item embedding',
        registers,
      }),
      userEmbeddings: new Counter({
        name: 'preranking_user_embeddings_total',
        help: 'User embeddings by source: the request (retrieval) or computed here',
        labelNames: ['source'],
        registers,
      }),
    };
    for (const event of this.early.splice(0)) this.reload(event);
  }

  reload(event: ModelReloadEvent): void {
    if (this.exported) this.exported.reloads.inc({ outcome: event.outcome });
    else this.early.push(event);
  }

  unknownItems(count: number): void {
    this.exported?.unknownItems.inc({}, count);
  }

  userEmbedding(source: 'request' | 'computed'): void {
    this.exported?.userEmbeddings.inc({ source });
  }
}
