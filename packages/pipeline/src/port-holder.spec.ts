import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { conflictsWith, decodeAddress, describeHolder, portHolders, socketsOnPort } from './port-holder.js';

const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1142 1 00000000f6d81f56 100 0 0 10 0
   1: 0100007F:3AFC 0100007F:3AFB 06 00000000:00000000 03:00000DD4 00000000  1000        0 0 3 000000006def1834
   2: 0100007F:3AFC 0100007F:9C41 01 00000000:00000000 00:00000000 00000000  1000        0 98765 1 0000000000000000 20 4 30 10 -1
`;

const TABLE6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:3AFC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 555 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:3AFC 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:3AFC 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 20 4 30 10 -1
`;

describe('sockets on a port, from /proc/net/tcp', () => {
  it('decodes the kernel addresses (little-endian words, port in hex), v4, v4-mapped v6 and v6', () => {
    expect(decodeAddress('0100007F:3AFC')).toEqual({ host: '127.0.0.1', port: 15100 });
    expect(decodeAddress('00000000:07E8')).toEqual({ host: '0.0.0.0', port: 2024 });
    expect(decodeAddress('0000000000000000FFFF00000100007F:1F90')).toEqual({ host: '::ffff:127.0.0.1', port: 8080 });
    expect(decodeAddress('00000000000000000000000001000000:3AFC')).toEqual({ host: '::1', port: 15100 });
    expect(decodeAddress('00000000000000000000000000000000:0000')).toEqual({ host: '::', port: 0 });
  });

  it('lists every socket on the port with its state, peer, uid and inode, and which of them stand in the way on 127.0.0.1', () => {
    const v4 = socketsOnPort(TABLE, 15100);
    expect(v4).toEqual([
      { state: 'TIME_WAIT', local: '127.0.0.1:15100', remote: '127.0.0.1:15099', uid: 1000, inode: 0 },
      { state: 'ESTABLISHED', local: '127.0.0.1:15100', remote: '127.0.0.1:40001', uid: 1000, inode: 98765 },
    ]);
    expect(socketsOnPort(TABLE, 2024)).toEqual([{ state: 'LISTEN', local: '0.0.0.0:2024', remote: '0.0.0.0:0', uid: 0, inode: 1142 }]);
    const v6 = socketsOnPort(TABLE6, 15100);
    expect(v6.map((h) => [h.state, h.local])).toEqual([
      ['LISTEN', ':::15100'],
      ['ESTABLISHED', '::ffff:127.0.0.1:15100'],
      ['ESTABLISHED', '::1:15100'],
    ]);
    expect([...v4, ...v6].map((h) => conflictsWith(h, '127.0.0.1'))).toEqual([true, true, true, true, false]);
    expect(describeHolder(v4[0]!)).toBe(
      'a connection 127.0.0.1:15100 -> 127.0.0.1:15099 (TIME_WAIT) of no process: the kernel keeps a closed connection up to 60 s',
    );
    expect(describeHolder(v6[0]!)).toBe('a process of uid 1001 this user cannot see (socket inode 555) listening on :::15100');
  });

  describe('on this machine', () => {
    let server: Server;
    let client: Socket;
    beforeAll(async () => {
      server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      client = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await new Promise((r) => client.once('connect', r));
    });
    afterAll(async () => {
      client.destroy();
      await new Promise((r) => server.close(r));
    });

    it('finds a listener and a connection using a port as its source port, each with this process as owner', async () => {
      if (process.platform !== 'linux') return;
      const listening = (server.address() as AddressInfo).port;
      const holders = await portHolders(listening);
      const listener = holders.find((h) => h.state === 'LISTEN');
      expect(listener).toMatchObject({ local: `127.0.0.1:${listening}`, pid: process.pid });
      expect(describeHolder(listener!)).toMatch(
        new RegExp(`^pid ${process.pid} \\(.*node.*\\) listening on 127\\.0\\.0\\.1:${listening}$`),
      );

      const source = client.localPort!;
      // An earlier connection of another program may have used the same source port (left in TIME_WAIT): ours is the one to the server.
      const connection = (await portHolders(source)).find(
        (h) => h.local === `127.0.0.1:${source}` && h.remote === `127.0.0.1:${listening}`,
      );
      expect(connection).toMatchObject({ state: 'ESTABLISHED', pid: process.pid });
    });
  });
});
