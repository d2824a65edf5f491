// pnpm test:fuzz [short|full]: the fuzz run (fuzz.ts) against a pipeline of its own; the last line is one JSON object.
// The case set runs FUZZ_PASSES times (default 2): the first pass warms every process up (RSS from a cold start
// grows with any first load), the growth over the last pass is what "RSS bounded" is judged by.
import { envNumber } from '../harness/script-env';
import { runFuzz } from './fuzz';
import { launchTarget } from './launch';

async function main(): Promise<void> {
  const cases = (process.argv[2] ?? process.env.FUZZ_CASES ?? 'full') as 'short' | 'full';
  if (cases !== 'short' && cases !== 'full') throw new Error(`cases must be short or full, got "${cases}"`);
  const target = await launchTarget({}, (line) => process.stderr.write(`${line}\n`));
  try {
    const started = Date.now();
    const passes = envNumber('FUZZ_PASSES', 2);
    const results = [];
    for (let pass = 0; pass < passes; pass++) {
      results.push(
        await runFuzz({
          gatewayRest: target.pipeline.httpUrl,
          gatewayGrpc: target.pipeline.addresses.gateway,
          stageAddresses: target.stageAddresses,
          pids: target.pids,
          apiKey: target.apiKey,
          cases,
          seed: 20261202 + pass,
        }),
      );
    }
    const last = results.at(-1)!;
    const result = {
      ...last,
      fuzz_cases: results.reduce((sum, r) => sum + r.fuzz_cases, 0),
      fuzz_5xx: results.reduce((sum, r) => sum + r.fuzz_5xx, 0),
      transport_internal: results.reduce((sum, r) => sum + r.transport_internal, 0),
      crashes: Math.max(...results.map((r) => r.crashes)),
      findings: results.flatMap((r) => r.findings),
      passes,
      first_pass_rss_growth_pct: results[0]!.rss_growth_pct,
    };
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
