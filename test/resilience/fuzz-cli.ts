// pnpm test:fuzz [short|full]: the fuzz run (fuzz.ts) against a pipeline of its own; the last line is one JSON object.
import { runFuzz } from './fuzz';
import { launchTarget } from './launch';

async function main(): Promise<void> {
  const cases = (process.argv[2] ?? process.env.FUZZ_CASES ?? 'full') as 'short' | 'full';
  if (cases !== 'short' && cases !== 'full') throw new Error(`cases must be short or full, got "${cases}"`);
  const target = await launchTarget({}, (line) => process.stderr.write(`${line}\n`));
  try {
    const started = Date.now();
    const result = await runFuzz({
      gatewayRest: target.pipeline.httpUrl,
      gatewayGrpc: target.pipeline.addresses.gateway,
      stageAddresses: target.stageAddresses,
      pids: target.pids,
      apiKey: target.apiKey,
      cases,
    });
    for (const finding of result.findings) console.log(`finding: ${finding}`);
    console.log(`by target: ${JSON.stringify(result.by_target)}`);
    console.log(`by status: ${JSON.stringify(result.by_status)}`);
    console.log(JSON.stringify({ cases, seconds: Math.round((Date.now() - started) / 100) / 10, ...result }));
    process.exitCode = result.fuzz_5xx > 0 || result.crashes > 0 ? 1 : 0;
  } finally {
    await target.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
