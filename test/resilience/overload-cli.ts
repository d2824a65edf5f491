// pnpm test:overload: the capacity and 2x it with the static in-flight limit (the earlier defaults), then the overload
// curve (overload.ts) with the gateway's default admission control (the adaptive in-flight limit; ADMISSION_* in the
// environment reach the gateway), then 2x with admission control off (ADMISSION_MAX_IN_FLIGHT=0 and
// ADMISSION_MAX_EVENT_LOOP_LAG_MS=0): each on a pipeline of its own, in one run.
// Prints a table; the last line is one JSON object. OVERLOAD_DURATION_S sets the seconds per level (default 10);
// OVERLOAD_CAPACITY_QPS skips the capacity measurement (the levels are multiples of it: runs A/B-compared at the
// same offered loads); OVERLOAD_MULTIPLES (e.g. 2,3) the multiples offered with the defaults (0.5,1,1.5,2,3).
import { envNumber, envNumberList } from '../harness/script-env';
import { launchTarget } from './launch';
import { curveTable, runOverload } from './overload';

const DURATION_S = envNumber('OVERLOAD_DURATION_S', 10, 'positive');
const MULTIPLES = envNumberList('OVERLOAD_MULTIPLES', 'positive');
const CAPACITY_QPS = process.env.OVERLOAD_CAPACITY_QPS ? envNumber('OVERLOAD_CAPACITY_QPS', 0, 'positive') : undefined;

/** The earlier defaults: the static in-flight limit (ADMISSION_MAX_IN_FLIGHT), no event-loop lag limit. */
const STATIC = { ADMISSION_ADAPTIVE: 'false', ADMISSION_MAX_EVENT_LOOP_LAG_MS: '0' };
const OFF = { ADMISSION_MAX_IN_FLIGHT: '0', ADMISSION_MAX_EVENT_LOOP_LAG_MS: '0' };

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  /** Levels on a pipeline of its own with these gateway settings (the capacity measured when not given). */
  const curve = async (env: Record<string, string>, capacityQps?: number, multiples?: number[]) => {
    const target = await launchTarget(env, log);
    try {
      return await runOverload({
        gatewayRest: target.pipeline.httpUrl,
        apiKey: target.apiKey,
        durationS: DURATION_S,
        ...(capacityQps === undefined ? {} : { capacityQps }),
        ...(multiples === undefined ? {} : { multiples }),
      });
    } finally {
      await target.close();
    }
  };
  // The capacity is measured on the static limit's pipeline (its 2x point is the comparison), whose 32 a closed loop of
  // 16 never reaches, so nothing sheds the loop itself (the adaptive limit shrinks only in a window that filled it).
  const staticLimit = await curve(STATIC, CAPACITY_QPS, [2]);
  const capacity = staticLimit.capacity_qps;
  const withAdmission = await curve({}, capacity, MULTIPLES);
  const without = await curve(OFF, capacity, [2]);
  const settings = Object.entries(process.env).filter(([name]) => name.startsWith('ADMISSION_'));
  console.log(
    `capacity ${capacity} answers/s; with admission control (${settings.length > 0 ? settings.map(([n, v]) => `${n}=${v}`).join(' ') : 'defaults'}):`,
  );
  console.log(curveTable(withAdmission.curve));
  console.log('static in-flight limit, no lag limit (ADMISSION_ADAPTIVE=false, ADMISSION_MAX_EVENT_LOOP_LAG_MS=0), 2x capacity:');
  console.log(curveTable(staticLimit.curve));
  console.log('without admission control (ADMISSION_MAX_IN_FLIGHT=0, ADMISSION_MAX_EVENT_LOOP_LAG_MS=0), 2x capacity:');
  console.log(curveTable(without.curve));
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
