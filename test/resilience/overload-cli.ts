// pnpm test:overload: the overload curve (overload.ts) against a pipeline of its own with the gateway's default
// admission control (the adaptive in-flight limit; ADMISSION_* in the environment reach the gateway), then the same
// 2x-capacity load with the static limit (ADMISSION_ADAPTIVE=false) and with admission control off
// (ADMISSION_MAX_IN_FLIGHT=0 and ADMISSION_MAX_EVENT_LOOP_LAG_MS=0) as the baselines measured in the same run.
// Prints a table; the last line is one JSON object. OVERLOAD_DURATION_S sets the seconds per level (default 10).
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
  const settings = Object.entries(process.env).filter(([name]) => name.startsWith('ADMISSION_'));
  console.log(
    `capacity ${withAdmission.capacity_qps} answers/s; with admission control (${settings.length > 0 ? settings.map(([n, v]) => `${n}=${v}`).join(' ') : 'defaults'}):`,
  );
  console.log(table(withAdmission.curve));
  /** One more run of the 2x level on a pipeline of its own, with these gateway settings. */
  const at2x = async (env: Record<string, string>) => {
    const target = await launchTarget(env, log);
    try {
      return await runOverload({
        gatewayRest: target.pipeline.httpUrl,
        apiKey: target.apiKey,
        durationS: DURATION_S,
        capacityQps: withAdmission.capacity_qps,
        multiples: [2],
      });
    } finally {
      await target.close();
    }
  };
  const staticLimit = await at2x({ ADMISSION_ADAPTIVE: 'false' });
  console.log('static in-flight limit (ADMISSION_ADAPTIVE=false), 2x capacity:');
  console.log(table(staticLimit.curve));
  const without = await at2x({ ADMISSION_MAX_IN_FLIGHT: '0', ADMISSION_MAX_EVENT_LOOP_LAG_MS: '0' });
  console.log('without admission control (ADMISSION_MAX_IN_FLIGHT=0, ADMISSION_MAX_EVENT_LOOP_LAG_MS=0), 2x capacity:');
  console.log(table(without.curve));
  console.log(
    JSON.stringify({
      ...withAdmission,
      static_limit: { p99_ms_at_2x_capacity: staticLimit.shed_p99_ms_at_2x_capacity, point: staticLimit.curve[0] },
      baseline_without_admission: { p99_ms_at_2x_capacity: without.shed_p99_ms_at_2x_capacity, point: without.curve[0] },
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
