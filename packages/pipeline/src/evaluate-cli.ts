#!/usr/bin/env node
import { repoRoot } from '@recsys/service-kit';
import { UsageError } from '@recsys/data';
import { evaluateUsage, parseEvaluateArgs } from './evaluate-args.js';
import { evaluatePipeline } from './evaluate-pipeline.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  let command;
  try {
    command = parseEvaluateArgs(process.argv.slice(2), process.env, repoRoot);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`recsys-evaluate-pipeline: ${error.message}\n\n${evaluateUsage}`);
    return 2;
  }
  if (command.help) {
    console.log(evaluateUsage);
    return 0;
  }
  const { report, files } = await evaluatePipeline({ ...command.options, log: say });
  say(`report: ${files.html}`);
  // The last line: funnel.json's path and its figures per setting.
  console.log(
    JSON.stringify({
      json: files.json,
      html: files.html,
      settings: report.settings.map((s) => ({
        retrieved: s.retrieved,
        pre_ranked: s.pre_ranked,
        ranked: s.ranked,
        default: s.default,
        recall_retrieval: s.recall_retrieval,
        recall_preranking: s.recall_preranking,
        recall_ranking: s.recall_ranking,
        recall_final: s.recall_final,
        p50_ms: s.p50_ms,
        p99_ms: s.p99_ms,
      })),
    }),
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`recsys-evaluate-pipeline: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
