import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { FREE_PORT_MIN, ephemeralPortLow } from '@recsys/service-kit';
import { PortInUseError, PortReservation, waitForPort } from './ports.js';

/** The error code of listening on 127.0.0.1:port now, or 'ok'. */
function listenResult(port: number): Promise<string> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    server.listen(port, '127.0.0.1', () => server.close(() => done('ok')));
  });
}

/** A server and one connection to it: the connection's source port comes from the kernel's ephemeral range. */
async function connection(): Promise<{ server: Server; client: Socket; peer: Promise<Socket>; close: () => Promise<void> }> {
  let accepted!: (socket: Socket) => void;
  const peer = new Promise<Socket>((r) => (accepted = r));
  const server = createServer((socket) => accepted(socket));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  const close = async () => {
    client.destroy();
    (await peer).destroy();
    await new Promise((r) => server.close(r));
  };
  return { server, client, peer, close };
}

/** A node process listening on a free port; resolves with it once it listens. */
function listenerProcess(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port)); setTimeout(() => {}, 60000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((done) => child.stdout!.once('data', (d: Buffer) => done({ child, port: Number(String(d).trim()) })));
}

const linux = process.platform === 'linux';

describe('port reservations and waits (recsys-up)', () => {
  it('holds a port from the start (nothing else can listen on it, no connection can take it) until released', async () => {
    const log: string[] = [];
    const reservation = await PortReservation.take('ranking', 0, (line) => log.push(line));
    expect(reservation.held).toBe(true);
    // Below the ephemeral range: once released for the service, no other program's listen(0) and no outgoing
    // connection can take it before the service listens (a CI run lost a start to that).
    expect(reservation.port).toBeGreaterThanOrEqual(FREE_PORT_MIN);
    expect(reservation.port).toBeLessThan(ephemeralPortLow());
    expect(await listenResult(reservation.port)).toBe('EADDRINUSE');
    await reservation.release();
    expect(await listenResult(reservation.port)).toBe('ok');
    expect(log).toEqual([]);
  });

  it('fails at once, naming the program, its pid and the flag, when another server listens on the port', async () => {
    const { child, port } = await listenerProcess();
    try {
      const taken = PortReservation.take('retrieval', port, () => undefined);
      await expect(taken).rejects.toThrow(PortInUseError);
      const message = `retrieval port 127.0.0.1:${port} is taken by another program: pid ${child.pid} (${process.execPath} -e`;
      if (linux) await expect(taken).rejects.toThrow(message);
      await expect(taken).rejects.toThrow('choose another port with --retrieval-port N (0 picks a free one)');
      await expect(waitForPort('retrieval', port, () => undefined, 5000)).rejects.toThrow(linux ? message : 'is taken by another program');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('notes a port a connection holds as its source port, then waits for the connection to let it go', async () => {
    const held = await connection();
    const port = held.client.localPort!;
    expect(await listenResult(port)).toBe('EADDRINUSE');
    const log: string[] = [];
    const reservation = await PortReservation.take('preranking', port, (line) => log.push(line));
    expect(reservation.held).toBe(false);
    const remote = `127.0.0.1:${(held.server.address() as AddressInfo).port}`;
    // Other connections (an earlier test's, now in TIME_WAIT) may share the source port and be named too.
    const holder = linux ? `a connection 127.0.0.1:${port} -> ${remote} (ESTABLISHED) of pid ${process.pid} (` : '';
    expect(log).toHaveLength(1);
    expect(log[0]).toContain(`preranking: 127.0.0.1:${port} is in use for now by `);
    expect(log[0]).toContain(holder);
    let waited = false;
    const ready = waitForPort('preranking', port, (line) => {
      log.push(line);
      // The server side closes first: the client's side then keeps no TIME_WAIT on the port.
      void held.peer.then((socket) => socket.end());
    }).then(() => (waited = true));
    await ready;
    expect(waited).toBe(true);
    expect(log[1]).toContain(`preranking: 127.0.0.1:${port} is held by `);
    expect(log[1]).toContain(holder);
    expect(log[1]).toContain('waiting up to 70 s for it to be let go');
    expect(await listenResult(port)).toBe('ok');
    await held.close();
  });

  it('gives up after the wait, naming the connection that keeps the port', async () => {
    const held = await connection();
    const port = held.client.localPort!;
    try {
      const waited = waitForPort('reranking', port, () => undefined, 600);
      await expect(waited).rejects.toThrow(`reranking port 127.0.0.1:${port} was still in use after 1 s of waiting: `);
      if (linux) await expect(waited).rejects.toThrow(`(ESTABLISHED) of pid ${process.pid}`);
      await expect(waited).rejects.toThrow('--reranking-port N');
    } finally {
      await held.close();
    }
  });
});
