// A Hoichan hub in its own process, so a bench can read the hub's own CPU and
// RSS apart from the load generators. Run by HubProcess.start(); answers IPC:
// 'gc' (collect garbage, then reply) and 'close'. `media` overrides go into the
// hub's media config; `other` are further config sections (e.g. devices), merged the same way.

import './quiet.js';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface HubProcessInfo {
  url: string;
  pid: number;
  workerPids: number[];
}

const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdefghi';
export const BENCH_SECRET = SECRET;

export class HubProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly info: HubProcessInfo,
  ) {}

  static async start(mediaOverrides: Record<string, unknown> = {}, otherOverrides: Record<string, unknown> = {}): Promise<HubProcess> {
    const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(mediaOverrides), JSON.stringify(otherOverrides)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const info = await new Promise<HubProcessInfo>((resolve, reject) => {
      child.once('message', (m) => resolve(m as HubProcessInfo));
      child.once('exit', (code) => reject(new Error(`hub process exited (${code})`)));
    });
    return new HubProcess(child, info);
  }

  gc(): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('message', () => resolve());
      this.child.send('gc');
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send('close');
    await exited;
  }
}

// As a child: start the hub and report.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  const { loadConfig } = await import('../../../src/config/load.js');
  const { Hub } = await import('../../../src/hub/Hub.js');
  const media = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
  const other = JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>;
  const hub = await Hub.start(
    loadConfig({
      env: {},
      overrides: {
        ...other,
        http: { listenIp: '127.0.0.1', port: 0 },
        media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: 31600, rtcMinPort: 32000, rtcMaxPort: 33999, workerLogLevel: 'error', maxPeersPerConference: 1000, ...media },
        auth: { jwtSecret: SECRET, demo: false },
        // Benches open many sockets and peers from one address quickly: caps far above what they use.
        signaling: {
          requestsPerSecond: 1000,
          requestBurst: 1000,
          userRequestsPerSecond: 10_000,
          userRequestBurst: 10_000,
          ipRequestsPerSecond: 100_000,
          ipRequestBurst: 100_000,
          maxConnectionsPerIp: 10_000,
        },
      },
    }),
  );
  process.send({ url: hub.url, pid: process.pid, workerPids: hub.pool.workers.map((w) => w.worker.pid) } satisfies HubProcessInfo);
  process.on('message', (message) => {
    if (message === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send!('gc-done');
    } else if (message === 'close') {
      void hub.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void hub.close().then(() => process.exit(0)));
}
