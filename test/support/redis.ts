import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, sleep } from '../agent/uplink-helpers.js';

/** A throwaway redis-server on a free loopback port, no persistence. */
export class TestRedis {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  /** `port`: start again on the port of a stopped one (an outage, then Redis back where the hubs look for it). */
  static async start(port?: number): Promise<TestRedis> {
    port ??= await freePort();
    const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 5000;
    for (;;) {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return new TestRedis(url, child);
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error('redis-server did not start');
        }
        await sleep(50);
      }
    }
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** A short-lived plain connection to one redis-server (or sentinel) on loopback, closed after `use`. */
export async function withRedisNode<T>(port: number, use: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await use(r);
  } finally {
    r.disconnect();
  }
}

/** Resolves once `check` holds (errors count as not yet); throws naming `what` after `timeoutMs`. */
export async function waitForRedis(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Resolves once a redis-server (or sentinel) on `port` answers PING. */
export function waitForPing(port: number, timeoutMs = 5000): Promise<void> {
  return waitForRedis(async () => (await withRedisNode(port, (r) => r.ping())) === 'PONG', timeoutMs, `redis-server on port ${port}`);
}
