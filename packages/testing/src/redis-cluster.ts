import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@recsys/service-kit';
import { Redis } from 'ioredis';
import { RedisProcess } from './redis-server.js';

const SLOTS = 16384;

/**
 * A real Redis Cluster of `masters` redis-server processes (no replicas) on free loopback ports,
 * each with its own cluster bus port and its data (AOF with fsync always, nodes.conf) in its own
 * folder: a node stopped and started again rejoins with its id, slots and data. Slots are assigned
 * from code (ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET), as `redis-cli --cluster create` does, in well
 * under a second.
 */
export class RedisCluster {
  private readonly dir = mkdtempSync(join(tmpdir(), 'recsys-redis-cluster-'));
  private readonly nodes: RedisProcess[] = [];
  private readonly busPorts: number[] = [];

  private constructor() {}

  /** `host:port` of every master, comma-separated: the form REDIS_CLUSTER_NODES takes. */
  get seeds(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  get ports(): number[] {
    return this.nodes.map((node) => node.port);
  }

  static async start(masters = 3, options: { nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
    const cluster = new RedisCluster();
    try {
      await cluster.create(masters, options.nodeTimeoutMs ?? 1000);
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** Which node serves `slot` (slots are assigned in equal ranges, node 0 first). */
  nodeOfSlot(slot: number): number {
    const n = this.nodes.length;
    for (let i = n - 1; i > 0; i--) if (slot >= firstSlot(i, n)) return i;
    return 0;
  }

  /** Stops node `index` (SIGKILL models a crash); its slots are unserved until it is started again. */
  async stopNode(index: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.node(index).stop(signal);
  }

  /** Starts node `index` again on its ports and folder, then waits until the cluster is healthy. */
  async startNode(index: number): Promise<void> {
    await this.node(index).start();
    await this.waitUntilHealthy();
  }

  /** Waits until every running node reports cluster_state:ok with all slots served. */
  async waitUntilHealthy(timeoutMs = 20000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(this.nodes.filter((n) => n.running).map((n) => clusterInfo(n.port)));
      if (states.every((s) => s.cluster_state === 'ok' && s.cluster_slots_ok === String(SLOTS))) return;
      if (Date.now() > until)
        throw new Error(`Redis Cluster on ${this.seeds} not healthy within ${timeoutMs} ms: ${JSON.stringify(states)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private node(index: number): RedisProcess {
    const node = this.nodes[index];
    if (!node) throw new RangeError(`no node ${index}: the cluster has ${this.nodes.length}`);
    return node;
  }

  private async create(masters: number, nodeTimeoutMs: number): Promise<void> {
    for (let i = 0; i < masters; i++) {
      const [port, busPort] = await distinctFreePorts(2, [...this.ports, ...this.busPorts]);
      const dir = join(this.dir, `node-${i}`);
      mkdirSync(dir);
      const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort!)];
      args.push('--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-announce-ip', '127.0.0.1');
      this.nodes.push(new RedisProcess(port!, dir, args));
      this.busPorts.push(busPort!);
    }
    await Promise.all(this.nodes.map((node) => node.start()));
    const clients = this.nodes.map((node) => new Redis(node.port, '127.0.0.1', { lazyConnect: false }));
    try {
      await Promise.all(
        clients.map(async (client, i) => {
          await client.call('CLUSTER', 'ADDSLOTSRANGE', firstSlot(i, masters), firstSlot(i + 1, masters) - 1);
          // Distinct epochs up front, so no collision has to be resolved while the nodes meet.
          await client.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
        }),
      );
      for (let i = 1; i < masters; i++) {
        await clients[0]!.call('CLUSTER', 'MEET', '127.0.0.1', this.nodes[i]!.port, this.busPorts[i]!);
      }
    } finally {
      clients.forEach((client) => client.disconnect());
    }
    await this.waitUntilHealthy();
  }
}

/** The first slot of node `index` of `nodes`: equal ranges in node order. */
function firstSlot(index: number, nodes: number): number {
  return Math.floor((SLOTS * index) / nodes);
}

async function clusterInfo(port: number): Promise<Record<string, string>> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    const text = (await client.call('CLUSTER', 'INFO')) as string;
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter(Boolean)
        .map((line) => line.split(':') as [string, string]),
    );
  } catch (error) {
    return { error: String(error) };
  } finally {
    client.disconnect();
  }
}

/** `count` free ports, none of them in `taken` (a port just released may be handed out twice). */
async function distinctFreePorts(count: number, taken: number[]): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort();
    if (!ports.includes(port) && !taken.includes(port)) ports.push(port);
  }
  return ports;
}
