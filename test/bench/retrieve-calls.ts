// bench:retrieval's caller, run as its own small process: the bench itself holds a million ids and item vectors and
// the data set (a heap of about 500 MiB, whose scavenges took 18-27 ms each), and when it timed the calls its own
// collections landed in the latency it reported (a p99 of 16-22 ms against 1-3 ms pauses in the service). This
// process holds only the requests and the answers' bytes while it times the calls (answers decoded as they came,
// kept to the end, made its own scavenges take 16-25 ms).
//   node retrieve-calls.js INPUT.json OUTPUT.json
// INPUT: { address, servicePid, phases: [{ name, warmup: RetrieveRequest[], requests: RetrieveRequest[] }] } (JSON
// forms of retrieval.RetrieveRequest). Each phase sends its warm-up calls, then its timed calls one at a time,
// reading the service's CPU time (/proc) and the calls the feature service handled around the timed ones.
// OUTPUT: { phases: [{ name, serviceCpuMs, featureCalls, calls: [{ ms, candidates, embedding, channels }] }] }: each timed call's
// latency in milliseconds, the answer's candidate ids, user embedding and channel reports.
import { readFileSync, writeFileSync } from 'node:fs';
import { fromBinary, fromJson, type JsonValue, toBinary } from '@bufbuild/protobuf';
import { retrieval } from '@recsys/contracts';
import { createServiceClient } from '@recsys/service-kit';
import { cpuMsOf, handledCallsAt } from './stats';

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
  return Object.values(await handledCallsAt(url)).reduce((sum, calls) => sum + calls, 0);
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
      // Requests written and answers kept as bytes, decoded after the timed calls: answers decoded as they came (200
      // candidates each, kept to the end) survived every scavenge, which then took 16-25 ms in this process.
      const bodies = phase.requests.map((request) => toBinary(retrieval.RetrieveRequestSchema, parse(request)));
      const ms = new Float64Array(bodies.length);
      const answers: Uint8Array[] = [];
      const callsBefore = await handledFeatureCalls(input.featureMetricsUrl);
      const cpuBefore = cpuMsOf(input.servicePid);
      for (let k = 0; k < bodies.length; k++) {
        const started = process.hrtime.bigint();
        answers.push(await client.raw('retrieve', bodies[k]!));
        ms[k] = Number(process.hrtime.bigint() - started) / 1e6;
      }
      const serviceCpuMs = cpuMsOf(input.servicePid) - cpuBefore;
      const featureCalls = (await handledFeatureCalls(input.featureMetricsUrl)) - callsBefore;
      const calls = answers.map((bytes, k): CallRecord => {
        const answer = fromBinary(retrieval.RetrieveResponseSchema, bytes);
        return {
          ms: ms[k]!,
          candidates: answer.candidates.map((c) => c.itemId),
          embedding: answer.userEmbedding,
          channels: answer.channels.map(({ channel, durationMs, error }) => ({ channel, durationMs, error })),
        };
      });
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
