// pnpm test:overload: the overload curve (overload.ts) against a pipeline of its own with the gateway's default
// admission control, then the same 2x-capacity load with admission control off (ADMISSION_MAX_IN_FLIGHT=0 and ADMISSION_MAX_EVENT_LOOP_LAG_MS=0) as the
// baseline measured in the same run. Prints a table; the last line is one JSON object. OVERLOAD_DURATION_S sets the
// seconds per level (default 10).
import { launchTarget } from './launch';
import { runOverload, type CurvePoint } from './overload';

const DURATION_S = Number(process.env.OVERLOAD_DURATION_S ?? 10);

function table(curve: CurvePoint[]): string {
  const rows = curve.map(
    (p) =>
      `| ${p.offered_qps} | ${p.answered_qps} | ${p.shed_qps} | ${p.p99_ms} | ${p.shed_latency_p99_ms ?? '-'} | ${p.degraded_pct} | ${p.other ? JSON.stringify(p.other) : '-'} |`,
  );
  return [
    '| offered/s | answered/s | shed/s | answered p99 ms | shed p99 ms | degraded % | other |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const target = await launchTarget({}, log);
  let withAdmission;
  try {
    withAdmission = await runOverload({ gatewayRest: target.pipeline.httpUrl, apiKey: target.apiKey, durationS: DURATION_S });
  } finally {
    await target.close();
  }
  console.log(`capacity ${withAdmission.capacity_qps} answers/s; with admission control (defaults):`);
  console.log(table(withAdmission.curve));
  const baseline = await launchTarget({ ADMISSION_MAX_IN_FLIGHT: '0', ADMISSION_MAX_EVENT_LOOP_LAG_MS: '0' }, log);
  let without;
  try {
    without = await runOverload({
      gatewayRest: baseline.pipeline.httpUrl,
      apiKey: baseline.apiKey,
      durationS: DURATION_S,
      capacityQps: withAdmission.capacity_qps,
      multiples: [2],
    });
  } finally {
    await baseline.close();
  }
  console.log('without admission control (ADMISSION_MAX_IN_FLIGHT=0, ADMISSION_MAX_EVENT_LOOP_LAG_MS=0), 2x capacity:');
  console.log(table(without.curve));
  console.log(
    JSON.stringify({
      ...withAdmission,
      baseline_without_admission: { p99_ms_at_2x_capacity: without.shed_p99_ms_at_2x_capacity, point: without.curve[0] },
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
