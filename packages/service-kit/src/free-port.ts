import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';

/**
 * Ports handed out to listen on later are drawn from FREE_PORT_MIN up to the start of the kernel's ephemeral range,
 * never from inside it: the kernel gives ephemeral ports to anyone's listen(0) and to every outgoing connection as its
 * source port, so a port from there, let go for a moment before a service listens on it, can be taken in that moment
 * (another launcher's listen(0), a connection to Redis), and the service fails with EADDRINUSE or waits for it. Below
 * the range only another caller drawing the same port at random in the same moment can take it.
 */
export const FREE_PORT_MIN = 20_000;
/** Linux's default ephemeral range starts here; other systems start higher (macOS at 49152), so it is a safe bound. */
const DEFAULT_EPHEMERAL_LOW = 32_768;
/** Fewer ports than this below the ephemeral range (a system configured so): listen(0) instead. */
const MIN_SPAN = 1_000;
const DRAWS = 64;

/** The first port of the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range on Linux). */
export function ephemeralPortLow(read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')): number {
  try {
    const low = Number(read().trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 && low <= 65535 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

/**
 * Listens on host:port now (exclusive: not shared with a cluster's workers): the server, or why not (EADDRINUSE, EACCES, …).
 * The server only holds the port: a connection that reaches it (a client polling the port before its service starts) is
 * closed at once. Left open it would never end (nothing reads it, so not even the client's close is seen) and
 * server.close(), which waits for every connection, would never finish: whoever lets the port go would hang.
 */
export function listenExclusive(
  port: number,
  host: string,
): Promise<{ server: Server; error?: undefined } | { server?: undefined; error: NodeJS.ErrnoException }> {
  return new Promise((done) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => done({ error }));
    server.listen({ port, host, exclusive: true }, () => done({ server }));
  });
}

export const closeServer = (server: Server): Promise<void> => new Promise((done) => server.close(() => done()));

/** A listener on the port, or undefined when it is taken or not ours to use; other failures are thrown. */
async function listenOn(port: number, host: string): Promise<Server | undefined> {
  const { server, error } = await listenExclusive(port, host);
  if (error === undefined) return server;
  if (error.code === 'EADDRINUSE' || error.code === 'EACCES') return undefined;
  throw error;
}

/**
 * A listener on a free port of `host`, drawn at random below the ephemeral range (see FREE_PORT_MIN), held until the
 * caller closes it: while it listens, nothing else can take the port.
 */
export async function holdFreePort(host = '127.0.0.1', ephemeralLow = ephemeralPortLow()): Promise<Server> {
  const span = ephemeralLow - FREE_PORT_MIN;
  if (span >= MIN_SPAN) {
    for (let draw = 0; draw < DRAWS; draw++) {
      const server = await listenOn(FREE_PORT_MIN + Math.floor(Math.random() * span), host);
      if (server !== undefined) return server;
    }
  }
  // Every draw taken, or no room below the range: the kernel's choice.
  const server = await listenOn(0, host);
  if (server === undefined) throw new Error(`no free port on ${host}`);
  return server;
}

/** The port a listener is bound to. */
export function boundPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('could not read the bound port');
  return address.port;
}

/**
 * A TCP port that was free on `host` a moment ago, drawn below the ephemeral range (see FREE_PORT_MIN), for a service to
 * listen on (tests and local runs).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = await holdFreePort(host);
  const port = boundPort(server);
  await closeServer(server);
  return port;
}
