// bench:retrieval's caller, run as its own small process: the bench itself holds a million ids and item vectors and
// the data set (a heap of about 500 MiB, whose scavenges took 18-27 ms each), and when it timed the calls its own
// collections landed in the latency it reported (a p99 of 16-22 ms against 1-3 ms pauses in the service). This
// process holds only the requests and what the answers bring back.
//   node retrieve-calls.js INPUT.json OUTPUT.json
// INPUT: { address, servicePid, phases: [{ name, warmup: RetrieveRequest[], requests: RetrieveRequest[] }] } (JSON
// forms of retrieval.RetrieveRequest). Each phase sends its warm-up calls, then its timed calls one at a time,
// reading the service's CPU time (/proc) and the calls the feature service handled around the timed ones.
// OUTPUT: { phases: [{ name, serviceCpuMs, featureCalls, calls: [{ ms, candidates, embedding, channels }] }] }: each timed call's
// latency in milliseconds, the answer's candidate ids, user embedding and channel reports.
import { readFileSync, writeFileSync } from 'node:fs';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { retrieval } from '@recsys/contracts';
import { createServiceClient } from '@recsys/service-kit';
import { cpuMsOf } from './stats';

export interface CallsInput {
  address: string;
  servicePid: number;
  /** The feature service's Prometheus endpoint: the calls it handled during each timed phase are counted. */
  featureMetricsUrl: string;
  phases: { name: string; warmup: JsonValue[]; requests: JsonValue[] }[];
}

export interface CallRecord {
  ms: number;
  candidates: string[];
  embedding: number[];
  channels: { channel: string; durationMs: number; error: string }[];
}

export interface CallsOutput {
  phases: { name: string; serviceCpuMs: number; featureCalls: number; calls: CallRecord[] }[];
}

/** Calls the feature service has handled (grpc_server_handled_total, every method). */
async function handledFeatureCalls(url: string): Promise<number> {
  const text = await (await fetch(url)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('grpc_server_handled_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

async function main(): Promise<void> {
  const [inputPath, outputPath] = process.argv.slice(2);
  if (inputPath === undefined || outputPath === undefined) throw new Error('usage: retrieve-calls.js INPUT.json OUTPUT.json');
  const input = JSON.parse(readFileSync(inputPath, 'utf8')) as CallsInput;
  const client = createServiceClient(retrieval.RetrievalService, input.address, { defaultTimeoutMs: 30_000 });
  const parse = (json: JsonValue) => fromJson(retrieval.RetrieveRequestSchema, json);
  const output: CallsOutput = { phases: [] };
  try {
    for (const phase of input.phases) {
      for (const request of phase.warmup) await client.retrieve(parse(request));
      const requests = phase.requests.map(parse);
      const calls: CallRecord[] = [];
      const callsBefore = await handledFeatureCalls(input.featureMetricsUrl);
      const cpuBefore = cpuMsOf(input.servicePid);
      for (const request of requests) {
        const started = process.hrtime.bigint();
        const answer = await client.retrieve(request);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        calls.push({
          ms,
          candidates: answer.candidates.map((c) => c.itemId),
          embedding: answer.userEmbedding,
          channels: answer.channels.map(({ channel, durationMs, error }) => ({ channel, durationMs, error })),
        });
      }
      const serviceCpuMs = cpuMsOf(input.servicePid) - cpuBefore;
      const featureCalls = (await handledFeatureCalls(input.featureMetricsUrl)) - callsBefore;
      output.phases.push({ name: phase.name, serviceCpuMs, featureCalls, calls });
    }
  } finally {
    client.close();
  }
  writeFileSync(outputPath, JSON.stringify(output));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
