import { connect, createServer } from 'node:net';
import { FREE_PORT_MIN, boundPort, closeServer, ephemeralPortLow, freePort, holdFreePort, listenExclusive } from './free-port.js';

const close = (server: ReturnType<typeof createServer>) => new Promise<void>((done) => server.close(() => done()));

describe('free ports', () => {
  it("reads the start of the kernel's ephemeral range, and a safe bound when it cannot", () => {
    expect(ephemeralPortLow(() => '32768\t60999\n')).toBe(32768);
    expect(ephemeralPortLow(() => '49152 65535')).toBe(49152);
    expect(ephemeralPortLow(() => 'garbage')).toBe(32768);
    expect(
      ephemeralPortLow(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(32768);
  });

  it('draws ports below the ephemeral range, where no listen(0) and no outgoing connection takes them', async () => {
    const low = ephemeralPortLow();
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(FREE_PORT_MIN);
      expect(port).toBeLessThan(low);
    }
  });

  it("holds the port it returns; with no room below the range, takes the kernel's choice", async () => {
    const held = await holdFreePort();
    const port = boundPort(held);
    // While held, nothing else listens on it.
    const other = createServer();
    const result = await new Promise<string>((done) => {
      other.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'error'));
      other.listen({ port, host: '127.0.0.1', exclusive: true }, () => done('ok'));
    });
    expect(result).toBe('EADDRINUSE');
    // A narrow range (2 ports above FREE_PORT_MIN is below the minimum span): the kernel's choice instead.
    const fallback = await holdFreePort('127.0.0.1', FREE_PORT_MIN + 2);
    expect(boundPort(fallback)).toBeGreaterThan(0);
    await Promise.all([close(held), close(fallback)]);
  });

  it('closes a connection that reaches a held port, so that letting the port go never waits for a client', async () => {
    // A client polling the port before its service starts (curl in a loop): the holder serves nothing and closes it.
    const reached = async (port: number) => {
      const client = connect(port, '127.0.0.1');
      client.on('error', () => undefined);
      await new Promise((done) => client.once('close', done));
    };
    const held = await holdFreePort();
    await reached(boundPort(held));
    const port = await freePort();
    const fixed = await listenExclusive(port, '127.0.0.1');
    if (fixed.server === undefined) throw fixed.error;
    await reached(port);
    // Both let go (server.close() waits for every connection: with one left open neither would resolve).
    await Promise.all([closeServer(held), closeServer(fixed.server)]);
  });
});
