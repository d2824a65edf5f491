/** What the event log cost the gateway, read from its metrics endpoint (bench:pipeline; bench:loop may read it the same way). */
export interface EventLogCost {
  /** p99 over the gateway's last 10,000 answers of what logging one cost the request on its path (the queue push), ms. */
  log_write_ms_p99: number;
  /** Mean over the last 10,000 logged answers of each one's share of its batch's send work off the path, ms. */
  log_flush_ms_per_answer: number;
  /** Answers the feature service appended to the event log. */
  events_logged: number;
  /** Answers left out of the log (queue full, write failed); the answers themselves were served. */
  events_dropped: number;
}

/** Sums a metric's samples (all label sets) in a Prometheus text exposition. */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Reads the gateway's impression-log metrics from a metrics URL (all-in-one: the process' one endpoint). */
export async function eventLogCost(gatewayMetricsUrl: string): Promise<EventLogCost> {
  const text = await (await fetch(gatewayMetricsUrl)).text();
  return {
    log_write_ms_p99: Math.round(metricSum(text, 'gateway_impression_log_write_ms_p99') * 1e6) / 1e6,
    log_flush_ms_per_answer: Math.round(metricSum(text, 'gateway_impression_log_flush_ms_per_answer') * 1e6) / 1e6,
    events_logged: metricSum(text, 'gateway_impressions_logged_total'),
    events_dropped: metricSum(text, 'gateway_impressions_dropped_total'),
  };
}
