/** Where a Redis Cluster is and how to log in: every node shares the scheme and the credentials. */
export interface RedisClusterNodes {
  /** Seed nodes: the client learns the rest of the cluster (and the slot map) from any of them. */
  nodes: { host: string; port: number }[];
  tls: boolean;
  username?: string;
  password?: string;
}

const HOST_PORT = /^(\[[\da-fA-F:.]+\]|[^\s:/@[\]]+):(\d{1,5})$/;

/**
 * Parses a comma-separated seed list; each entry `host:port`, `[v6]:port` or a
 * `redis://[user:password@]host:port` (`rediss://` for TLS) URL. Throws an Error saying what is wrong.
 */
export function parseClusterNodes(text: string): RedisClusterNodes {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error('expected host:port entries separated by commas');
  const parsed = entries.map(parseEntry);
  const [first] = parsed;
  const login = (e: ParsedEntry) => `${e.tls}|${e.username ?? ''}|${e.password ?? ''}`;
  if (parsed.some((e) => login(e) !== login(first!))) {
    throw new Error('every node must use the same scheme (redis:// or rediss://) and the same credentials');
  }
  const seen = new Set<string>();
  for (const { host, port } of parsed) {
    const key = `${host}:${port}`;
    if (seen.has(key)) throw new Error(`"${key}" is listed twice`);
    seen.add(key);
  }
  return {
    nodes: parsed.map(({ host, port }) => ({ host, port })),
    tls: first!.tls,
    ...(first!.username !== undefined ? { username: first!.username } : {}),
    ...(first!.password !== undefined ? { password: first!.password } : {}),
  };
}

interface ParsedEntry {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
}

function parseEntry(entry: string): ParsedEntry {
  const url = /^(rediss?):\/\/(?:([^@/]*)@)?([^/@]+?)\/?$/.exec(entry);
  const hostPort = HOST_PORT.exec(url ? url[3]! : entry);
  if (!hostPort) {
    throw new Error(`"${redact(entry)}" is not host:port or redis://[user:password@]host:port`);
  }
  const port = Number(hostPort[2]);
  if (port < 1 || port > 65535) throw new Error(`"${redact(entry)}": port must be 1 to 65535`);
  const host = hostPort[1]!.replace(/^\[(.*)\]$/, '$1');
  const result: ParsedEntry = { host, port, tls: url?.[1] === 'rediss' };
  const userInfo = url?.[2];
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    const username = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
    if (username) result.username = username;
    if (colon >= 0) result.password = decodeURIComponent(userInfo.slice(colon + 1));
  }
  return result;
}

/** Passwords never reach error messages or logs. */
function redact(entry: string): string {
  return entry.replace(/\/\/([^@/]*)@/, '//***@');
}

/** The seed list as it can be logged: host:port entries, without credentials. */
export function describeClusterNodes(cluster: RedisClusterNodes): string {
  return cluster.nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
}
