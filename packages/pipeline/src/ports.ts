import type { Server } from 'node:net';
import { boundPort, closeServer, holdFreePort, listenExclusive } from '@recsys/service-kit';
import { type PortHolder, conflictsWith, describeHolder, isListener, portHolders } from './port-holder.js';
import { HOST } from './services.js';

/**
 * A service name, or 'http' for the gateway's REST port: the launcher's flag for it is --<label>-port. A service's
 * metrics port (metricsPortLabel) has no flag: the launcher always picks a free one.
 */
export type PortLabel = string;

const METRICS_SUFFIX = ' metrics';
/** The label of a service's metrics port. */
export const metricsPortLabel = (service: string): PortLabel => `${service}${METRICS_SUFFIX}`;
const howToMove = (label: PortLabel) =>
  label.endsWith(METRICS_SUFFIX)
    ? 'or start again (the launcher picks a free metrics port)'
    : `or choose another port with --${label}-port N (0 picks a free one)`;

/**
 * How long a service's start waits for a port held by a connection (one that uses it as its local port) to be let go.
 * A connection closed from this side stays in TIME_WAIT, holding its port, for 60 s on Linux; longer means something
 * keeps a connection open on it, and the error names it.
 */
export const PORT_WAIT_MS = 70_000;
const PORT_POLL_MS = 250;

/** The port is taken: by another server, or by a connection that did not go away in time. The message names both and the flag. */
export class PortInUseError extends Error {
  constructor(
    readonly label: PortLabel,
    readonly port: number,
    readonly holders: PortHolder[],
    problem: string,
  ) {
    const who =
      holders.length > 0
        ? holders.map(describeHolder).join('; ')
        : 'no socket on it is visible here (/proc/net/tcp), so what holds it is unknown';
    super(`${label} port ${HOST}:${port} ${problem}: ${who}. Stop that program, ${howToMove(label)}`);
    this.name = 'PortInUseError';
  }
}

/** The sockets standing in the way of listening on HOST:port. */
async function blockers(port: number): Promise<PortHolder[]> {
  return (await portHolders(port)).filter((holder) => conflictsWith(holder, HOST));
}

/**
 * A port chosen for a service, held by a listener of the launcher's own from the start until the service starts: while
 * something listens on a port, the kernel gives it to no outgoing connection as its source port, so the training, the
 * feature load and the index build (which open connections all the while) cannot take it. A free port (0) is drawn below
 * the ephemeral range (holdFreePort), so that in the moment between its release and the service's listen no connection
 * and no other program's listen(0) can take it either.
 */
export class PortReservation {
  private constructor(
    readonly label: PortLabel,
    readonly port: number,
    private server: Server | undefined,
  ) {}

  /**
   * Holds `wanted` (0: a free port). A port another server listens on fails at once, naming it; one held by a
   * connection is noted and waited for when the service starts (connections end).
   */
  static async take(label: PortLabel, wanted: number, log: (line: string) => void): Promise<PortReservation> {
    if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) throw new Error(`--${label}-port: expected 0..65535, got ${wanted}`);
    // A free port: drawn below the ephemeral range, where no outgoing connection or listen(0) takes it once let go.
    if (wanted === 0) {
      const held = await holdFreePort(HOST);
      return new PortReservation(label, boundPort(held), held);
    }
    const { server, error } = await listenExclusive(wanted, HOST);
    if (error === undefined) return new PortReservation(label, wanted, server);
    if (error.code !== 'EADDRINUSE')
      throw new Error(`${label} port ${HOST}:${wanted}: cannot listen on it (${error.message}); choose another with --${label}-port N`);
    const holders = await blockers(wanted);
    if (holders.some(isListener)) throw new PortInUseError(label, wanted, holders.filter(isListener), 'is taken by another program');
    log(
      `${label}: ${HOST}:${wanted} is in use for now by ${holders.length > 0 ? holders.map(describeHolder).join('; ') : 'an unknown socket'}; ` +
        `checked again when ${label === 'http' ? 'the gateway' : 'it'} starts`,
    );
    return new PortReservation(label, wanted, undefined);
  }

  get held(): boolean {
    return this.server !== undefined;
  }

  /** Lets the port go, for the service to listen on it. */
  async release(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await closeServer(server);
  }
}

/**
 * Resolves once HOST:port can be listened on. A connection holding it (its local port) is waited for, up to `waitMs`,
 * with one line saying so; another server listening on it fails at once, naming the program and the flag.
 */
export async function waitForPort(label: PortLabel, port: number, log: (line: string) => void, waitMs = PORT_WAIT_MS): Promise<void> {
  const until = Date.now() + waitMs;
  let said = false;
  for (;;) {
    const { server, error } = await listenExclusive(port, HOST);
    if (error === undefined) return closeServer(server);
    if (error.code !== 'EADDRINUSE') throw new Error(`${label} port ${HOST}:${port}: cannot listen on it (${error.message})`);
    const holders = await blockers(port);
    if (holders.some(isListener)) throw new PortInUseError(label, port, holders.filter(isListener), 'is taken by another program');
    if (Date.now() >= until)
      throw new PortInUseError(label, port, holders, `was still in use after ${Math.round(waitMs / 1000)} s of waiting`);
    if (!said) {
      said = true;
      const who = holders.length > 0 ? holders.map(describeHolder).join('; ') : 'a socket not visible in /proc/net/tcp';
      log(`${label}: ${HOST}:${port} is held by ${who}; waiting up to ${Math.round(waitMs / 1000)} s for it to be let go`);
    }
    await new Promise((r) => setTimeout(r, PORT_POLL_MS));
  }
}
