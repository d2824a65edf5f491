import type { ServiceMetrics } from '@recsys/service-kit';
import type { ChannelName } from './channels/channel.js';

export type ChannelOutcome = 'ok' | 'error' | 'timeout' | 'skipped';

/** Per-channel latency, outcomes and candidates returned; cold starts; index swaps; in the service's own registry. */
export class RetrievalMetrics {
  private readonly channelSeconds;
  private readonly channelCalls;
  private readonly channelReturned;
  private readonly coldStarts;
  private readonly userStateFailures;
  private readonly swaps;

  constructor(metrics: ServiceMetrics) {
    this.channelSeconds = metrics.histogram(
      'retrieval_channel_duration_seconds',
      'Time a retrieval channel took, by channel',
      ['channel'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    this.channelCalls = metrics.counter('retrieval_channel_calls_total', 'Retrieval channel runs by channel and outcome', [
      'channel',
      'outcome',
    ]);
    this.channelReturned = metrics.counter('retrieval_channel_returned_total', 'Candidates a channel contributed to merging', ['channel']);
    this.coldStarts = metrics.counter('retrieval_cold_starts_total', 'Requests for users the feature service did not know');
    this.userStateFailures = metrics.counter(
      'retrieval_user_state_failures_total',
      'Requests served on the context alone because the user-state read failed',
    );
    this.swaps = metrics.counter('retrieval_index_swaps_total', 'Index versions taken up (ok) or refused (refused)', ['outcome']);
  }

  channel(channel: ChannelName, outcome: ChannelOutcome, seconds: number, returned: number): void {
    this.channelCalls.inc({ channel, outcome });
    if (outcome === 'skipped') return;
    this.channelSeconds.observe({ channel }, seconds);
    this.channelReturned.inc({ channel }, returned);
  }

  coldStart(): void {
    this.coldStarts.inc();
  }

  userStateFailure(): void {
    this.userStateFailures.inc();
  }

  indexSwap(outcome: 'ok' | 'refused'): void {
    this.swaps.inc({ outcome });
  }
}
