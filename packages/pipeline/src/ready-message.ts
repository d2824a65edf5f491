import { SERVICE_NAMES, type ServiceName } from './services.js';

export interface ReadyFacts {
  addresses: Record<ServiceName, string>;
  httpUrl: string;
  workDir: string;
  modelsDir: string;
  indexDir: string;
  redisUrl: string | undefined;
  /** The gateway's environment as it runs (AUTH_DISABLED, API_KEYS, API_KEYS_FILE). */
  gatewayEnv: Record<string, string | undefined>;
  seconds: number;
}

/** The key of the first `name:key` entry of API_KEYS, for a curl line that works as printed. */
export function firstApiKey(apiKeys: string | undefined): string | undefined {
  const entry = apiKeys
    ?.split(',')
    .map((p) => p.trim())
    .find(Boolean);
  const colon = entry?.indexOf(':') ?? -1;
  return colon > 0 ? entry!.slice(colon + 1).trim() || undefined : undefined;
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** Calls that return recommendations from the REST API, with the API key header when auth is on. */
export function curlLines(httpUrl: string, gatewayEnv: Record<string, string | undefined>, userId = 'user-1'): string[] {
  const authOn = !['true', '1'].includes(gatewayEnv.AUTH_DISABLED ?? '');
  const key = authOn ? (firstApiKey(gatewayEnv.API_KEYS) ?? 'YOUR_API_KEY') : undefined;
  const header = key === undefined ? '' : ` -H ${quote(`x-api-key: ${key}`)}`;
  const body = JSON.stringify({ user_id: userId, k: 10 });
  return [
    `curl -s -X POST ${httpUrl}/v1/recommendations -H 'content-type: application/json'${header} -d ${quote(body)}`,
    `curl -s${header} ${quote(`${httpUrl}/v1/recommendations?user_id=${encodeURIComponent(userId)}&k=10`)}`,
  ];
}

/** What a person needs once everything serves: where each service listens, how to try it, where the logs are. */
export function readyMessage(facts: ReadyFacts): string {
  const lines = [``, `recsys is ready (${facts.seconds.toFixed(1)} s):`];
  for (const name of SERVICE_NAMES) {
    const where = facts.addresses[name];
    if (!where) {
      lines.push(`  ${name.padEnd(11)} (left out)`);
      continue;
    }
    const extra =
      name === 'features'
        ? facts.redisUrl
          ? `  Redis at ${facts.redisUrl}`
          : '  in-memory store'
        : name === 'gateway'
          ? `  gRPC; REST at ${facts.httpUrl}`
          : '';
    lines.push(`  ${name.padEnd(11)} ${where}${extra}`);
  }
  // All-in-one mode: the stages answer in-process, in the one process whose log holds every service's lines.
  const allInOne = Object.values(facts.addresses).some((where) => where.startsWith('inproc://'));
  const logs = `${facts.workDir}/logs/${allInOne ? 'all-in-one' : '<service>'}.log`;
  lines.push(`  models      ${facts.modelsDir}`, `  index       ${facts.indexDir}`, `  logs        ${logs}`);
  if (facts.httpUrl) {
    const authOff = ['true', '1'].includes(facts.gatewayEnv.AUTH_DISABLED ?? '');
    lines.push(
      '',
      authOff
        ? 'The gateway runs with AUTH_DISABLED=true (local use only; set API_KEYS=name:key to require a key).'
        : 'The gateway requires an API key (API_KEYS / API_KEYS_FILE); the calls below send one.',
      'Try:',
      ...curlLines(facts.httpUrl, facts.gatewayEnv).map((line) => `  ${line}`),
    );
  } else {
    lines.push('', 'The gateway is left out: call the stages over gRPC at the addresses above.');
  }
  lines.push('Ctrl-C stops everything.');
  return lines.join('\n');
}
