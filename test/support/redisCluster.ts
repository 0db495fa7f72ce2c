import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep } from '../agent/uplink-helpers.js';
import { waitForPing, withRedisNode } from './redis.js';

const run = promisify(execFile);

/** One master of the test cluster. */
export interface ClusterNode {
  port: number;
  child: ChildProcess;
}

/**
 * A throwaway Redis Cluster of three masters (no replicas) on loopback, in a
 * temporary directory: three `redis-server --cluster-enabled yes` and
 * `redis-cli --cluster create`, then a wait until every node says
 * cluster_state:ok. No persistence.
 */
export class TestRedisCluster {
  private constructor(
    readonly nodes: ClusterNode[],
    private readonly dir: string,
  ) {}

  static async start(masters = 3): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-redis-cluster-'));
    const nodes: ClusterNode[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        const port = await nodePort();
        const child = spawn(
          '/usr/bin/redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'],
          { stdio: 'ignore' },
        );
        nodes.push({ port, child });
      }
      for (const { port } of nodes) await waitForPing(port);
      await run('/usr/bin/redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
      const cluster = new TestRedisCluster(nodes, dir);
      const deadline = Date.now() + 15_000;
      while (!(await cluster.#allOk())) {
        if (Date.now() > deadline) throw new Error('the Redis Cluster did not reach cluster_state:ok');
        await sleep(100);
      }
      return cluster;
    } catch (err) {
      for (const n of nodes) n.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The hub's redis.url for this cluster (redis-cluster://first?nodes=the others). */
  get url(): string {
    const [first, ...rest] = this.nodes.map((n) => `127.0.0.1:${n.port}`);
    return `redis-cluster://${first}?nodes=${rest.join(',')}`;
  }

  /** The slot of a key, as Redis computes it (hash tags included). */
  async slotOf(key: string): Promise<number> {
    return withRedisNode(this.nodes[0]!.port, async (r) => Number(await r.call('CLUSTER', 'KEYSLOT', key)));
  }

  /** The port of the master that serves `slot`. */
  async ownerOf(slot: number): Promise<number> {
    const ranges = (await withRedisNode(this.nodes[0]!.port, (r) => r.call('CLUSTER', 'SLOTS'))) as Array<[number, number, [string, number, ...unknown[]]]>;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return Number(range[2][1]);
  }

  /** The keys each master holds that match `pattern` (KEYS on each node directly, not through the cluster). */
  async keysByNode(pattern: string): Promise<Map<number, string[]>> {
    const found = new Map<number, string[]>();
    for (const { port } of this.nodes) found.set(port, (await withRedisNode(port, (r) => r.keys(pattern))).sort());
    return found;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        return exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #allOk(): Promise<boolean> {
    for (const { port } of this.nodes) {
      const info = String(await withRedisNode(port, (r) => r.call('CLUSTER', 'INFO')));
      if (!/cluster_state:ok/.test(info)) return false;
    }
    return true;
  }
}

/** A free port whose cluster bus port (port + 10000, Redis's rule) is free and valid too. */
async function nodePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await canListen(port + 10000))) return port;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
