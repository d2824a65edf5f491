import { readFile, readdir, readlink } from 'node:fs/promises';

/** TCP states as Linux numbers them in /proc/net/tcp (include/net/tcp_states.h). */
const TCP_STATES: Record<number, string> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
};

/** One TCP socket on a local port, as the kernel lists it, and the process owning it when this user may see it. */
export interface PortHolder {
  state: string;
  local: string;
  remote: string;
  uid: number;
  /** 0 for sockets no process owns any more (TIME_WAIT). */
  inode: number;
  pid?: number;
  command?: string;
}

/** An address of /proc/net/tcp{,6}: hex words in the kernel's byte order, then the port in hex. */
export function decodeAddress(hex: string): { host: string; port: number } {
  const [addr, port] = hex.split(':') as [string, string];
  const bytes = (word: string) => [6, 4, 2, 0].map((i) => parseInt(word.slice(i, i + 2), 16));
  let host: string;
  if (addr.length === 8) host = bytes(addr).join('.');
  else {
    const all = [0, 8, 16, 24].flatMap((i) => bytes(addr.slice(i, i + 8)));
    const v4mapped = all.slice(0, 10).every((b) => b === 0) && all[10] === 0xff && all[11] === 0xff;
    host = v4mapped
      ? `::ffff:${all.slice(12).join('.')}`
      : Array.from({ length: 8 }, (_, i) => ((all[2 * i]! << 8) | all[2 * i + 1]!).toString(16))
          .join(':')
          .replace(/(^|:)0(:0)+(:|$)/, '::');
  }
  return { host, port: parseInt(port, 16) };
}

/** The sockets of one /proc/net/tcp{,6} table whose local port is `port` (any local address). */
export function socketsOnPort(table: string, port: number): PortHolder[] {
  const holders: PortHolder[] = [];
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = decodeAddress(fields[1]!);
    if (local.port !== port) continue;
    const remote = decodeAddress(fields[2]!);
    const state = parseInt(fields[3]!, 16);
    holders.push({
      state: TCP_STATES[state] ?? `state ${state}`,
      local: `${local.host}:${local.port}`,
      remote: `${remote.host}:${remote.port}`,
      uid: Number(fields[7]),
      inode: Number(fields[9]),
    });
  }
  return holders;
}

/** Which process has a socket inode open: a scan of /proc/<pid>/fd (only the processes this user may read). */
async function owners(inodes: Set<number>): Promise<Map<number, { pid: number; command: string }>> {
  const found = new Map<number, { pid: number; command: string }>();
  if (inodes.size === 0) return found;
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode === undefined || !inodes.has(Number(inode)) || found.has(Number(inode))) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      found.set(Number(inode), { pid: Number(pid), command: cmdline.split('\0').filter(Boolean).join(' ') || '?' });
    }
    if (found.size === inodes.size) break;
  }
  return found;
}

/**
 * Every TCP socket on this machine (this network namespace) with `port` as its local port, with the owning process
 * where it can be found. Empty where /proc/net/tcp cannot be read (not Linux).
 */
export async function portHolders(port: number): Promise<PortHolder[]> {
  const holders: PortHolder[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    holders.push(...socketsOnPort(text, port));
  }
  const found = await owners(new Set(holders.map((h) => h.inode).filter((inode) => inode !== 0)));
  return holders.map((h) => ({ ...h, ...found.get(h.inode) }));
}

/** Whether a socket on the same port stands in the way of listening on `host` (the same address, or either is a wildcard). */
export function conflictsWith(holder: PortHolder, host: string): boolean {
  const local = holder.local.slice(0, holder.local.lastIndexOf(':')).replace(/^::ffff:/, '');
  return local === host || local === '0.0.0.0' || local === '::' || host === '0.0.0.0' || host === '::';
}

/** A listening socket is another server; anything else on the port is a connection, which ends on its own. */
export const isListener = (holder: PortHolder) => holder.state === 'LISTEN';

const MAX_COMMAND = 120;

/** `pid 123 (node server.js)`, or what the kernel says of the owner when this user cannot see the process. */
export function describeOwner(holder: PortHolder): string {
  if (holder.pid !== undefined) {
    const command = holder.command!.length > MAX_COMMAND ? `${holder.command!.slice(0, MAX_COMMAND)}…` : holder.command;
    return `pid ${holder.pid} (${command})`;
  }
  if (holder.inode === 0) return 'no process: the kernel keeps a closed connection up to 60 s';
  return `a process of uid ${holder.uid} this user cannot see (socket inode ${holder.inode})`;
}

/** What holds the port: `pid 123 (node x.js) listening on 127.0.0.1:15052`, or `a connection A -> B (ESTABLISHED) of pid 9 (…)`. */
export function describeHolder(holder: PortHolder): string {
  return isListener(holder)
    ? `${describeOwner(holder)} listening on ${holder.local}`
    : `a connection ${holder.local} -> ${holder.remote} (${holder.state}) of ${describeOwner(holder)}`;
}
