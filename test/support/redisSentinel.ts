import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freePort } from '../agent/uplink-helpers.js';
import { waitForPing, waitForRedis as waitFor, withRedisNode as withNode } from './redis.js';

interface Proc {
  port: number;
  child: ChildProcess;
}

/**
 * A throwaway Redis Sentinel set-up on loopback, in a temporary directory: a
 * master, one replica, and three sentinels watching the master as `name`
 * with a quorum of two (down after 1 s). No persistence. The master can be
 * killed to make the sentinels promote the replica.
 */
export class TestSentinelSet {
  private constructor(
    readonly name: string,
    readonly master: Proc,
    readonly replica: Proc,
    readonly sentinels: Proc[],
    private readonly dir: string,
  ) {}

  static async start(name = 'hoichan'): Promise<TestSentinelSet> {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-sentinel-set-'));
    const procs: Proc[] = [];
    const server = async (extra: string[]): Promise<Proc> => {
      const port = await freePort();
      const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra], { stdio: 'ignore' });
      procs.push({ port, child });
      await waitForPing(port);
      return { port, child };
    };
    try {
      const master = await server([]);
      const replica = await server(['--replicaof', '127.0.0.1', String(master.port)]);
      await waitFor(async () => /master_link_status:up/.test(await info(replica.port, 'replication')), 10_000, 'the replica to sync with the master');
      const sentinels: Proc[] = [];
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        // Sentinels rewrite their config file: each has its own, in the temp dir.
        const conf = join(dir, `sentinel-${port}.conf`);
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 10000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        const child = spawn('/usr/bin/redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
        procs.push({ port, child });
        await waitForPing(port);
        sentinels.push({ port, child });
      }
      const set = new TestSentinelSet(name, master, replica, sentinels, dir);
      // Ready when every sentinel knows the replica and the two other sentinels (they meet through the master's hello channel).
      await waitFor(
        async () => {
          for (const s of sentinels) {
            const m = await set.#sentinelMaster(s.port);
            if (m.get('num-slaves') !== '1' || m.get('num-other-sentinels') !== '2') return false;
          }
          return true;
        },
        20_000,
        'every sentinel to see the replica and the other sentinels',
      );
      return set;
    } catch (err) {
      for (const p of procs) p.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The hub's redis.url: the first sentinel, the master's name, the two others. */
  get url(): string {
    const [first, ...rest] = this.sentinels.map((s) => `127.0.0.1:${s.port}`);
    return `redis-sentinel://${first}/${this.name}?sentinels=${rest.join(',')}`;
  }

  /** The master's port as the sentinels now report it (the first that answers). */
  async masterPort(): Promise<number> {
    for (const s of this.sentinels) {
      try {
        const addr = (await withNode(s.port, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name))) as [string, string] | null;
        if (addr) return Number(addr[1]);
      } catch {
        // That sentinel is busy or gone: ask the next.
      }
    }
    throw new Error('no sentinel answered');
  }

  /** A plain connection to one server of the set, for reading what it holds. */
  withNode<T>(port: number, use: (r: Redis) => Promise<T>): Promise<T> {
    return withNode(port, use);
  }

  async stop(): Promise<void> {
    await Promise.all(
      [this.master, this.replica, ...this.sentinels].map(({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        return exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #sentinelMaster(port: number): Promise<Map<string, string>> {
    const flat = (await withNode(port, (r) => r.call('SENTINEL', 'MASTER', this.name))) as string[];
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
    return fields;
  }
}

function info(port: number, section: string): Promise<string> {
  return withNode(port, (r) => r.info(section));
}
