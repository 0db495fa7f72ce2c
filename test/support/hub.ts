import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io, type Socket } from 'socket.io-client';
import { deepMerge, loadConfig } from '../../src/config/load.js';
import type { HoichanConfig } from '../../src/config/schema.js';
import type { Hub } from '../../src/hub/Hub.js';
import { resolveWorkerBinary, WorkerBinaryError } from '../../src/media/workerBinary.js';
import { Authenticator } from '../../src/auth/index.js';
import type { Role } from '../../src/media/events.js';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** 48 bytes: the hub refuses secrets under 32 bytes outside demo mode. */
export const TEST_SECRET = 'test-secret-0123456789abcdef-0123456789abcdefghi';
/** Mints tokens as `hoichan token` does for a hub whose only key is TEST_SECRET. */
export const testAuth = Authenticator.forSecret(TEST_SECRET);

/** Builds the mediasoup worker first when no cached binary exists, so the suite needs no manual step. */
export function ensureWorkerBinary(): void {
  try {
    resolveWorkerBinary();
  } catch (err) {
    if (!(err instanceof WorkerBinaryError)) throw err;
    console.log('    (building mediasoup-worker first: no cached binary)');
    execFileSync('bash', [join(PROJECT_ROOT, 'scripts', 'build-worker.sh')], { stdio: 'inherit' });
    resolveWorkerBinary();
  }
}

// WebRtcServer ports are fixed per worker; give each test hub its own block, below
// Linux's ephemeral range (32768-60999): a CI run once lost a listen on 42048 to
// some client socket's ephemeral port.
let nextRtcPort = 20000 + (process.pid % 400) * 20;

// Test hubs keep their audit logs in one temp dir per test process, removed at exit.
let auditRoot: string | undefined;
let auditDirs = 0;
export function testAuditDir(): string {
  if (!auditRoot) {
    const root = (auditRoot = mkdtempSync(join(tmpdir(), 'hoichan-test-audit-')));
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  }
  return join(auditRoot, `hub-${++auditDirs}`);
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export async function startTestHub(overrides: DeepPartial<HoichanConfig> = {}): Promise<Hub> {
  ensureWorkerBinary();
  const { Hub } = await import('../../src/hub/Hub.js');
  const webRtcServerPort = nextRtcPort;
  nextRtcPort += 8;
  const base = {
    http: { listenIp: '127.0.0.1', port: 0 },
    media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort, rtcMinPort: 50000, rtcMaxPort: 59999, workerLogLevel: 'error' },
    auth: { jwtSecret: TEST_SECRET, demo: false },
    audit: { dir: testAuditDir() },
    // Its own records database (SQLite) in the same per-process temp tree.
    records: { dir: testAuditDir() },
  };
  const config = loadConfig({ env: {}, overrides: deepMerge(base, overrides as Record<string, unknown>) });
  return Hub.start(config);
}

/** A person's token for one conference ('*' only for engineers: the hub refuses it for the others). */
export function token(role: Role, conf: string, name = `${role}-user`, ttlSeconds = 600): string {
  return testAuth.sign({ kind: 'person', sub: `${role}-${name}`, name, role, conf, ttlSeconds });
}

/** A site agent's uplink token: sub is the site id; conferences (and optionally devices) listed. */
export function agentToken(siteId: string, conferences: string | string[], devices?: string[], ttlSeconds = 3600): string {
  return testAuth.sign({ kind: 'agent', siteId, name: siteId, conferences: typeof conferences === 'string' ? [conferences] : conferences, ...(devices ? { devices } : {}), ttlSeconds });
}

export type Reply = { ok: true; [key: string]: any } | { ok: false; error: { code: string; message: string } };

/** A real socket.io client of the hub, with request() returning the raw ack reply. */
export class TestClient {
  readonly socket: Socket;
  readonly events: { name: string; data: any }[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.onAny((name: string, data: unknown) => this.events.push({ name, data }));
  }

  static connect(url: string, authToken: string | undefined, options: { reconnection?: boolean } = {}): Promise<TestClient> {
    const socket = io(url, {
      auth: authToken === undefined ? {} : { token: authToken },
      transports: ['websocket'],
      reconnection: options.reconnection ?? false,
      forceNew: true,
    });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new TestClient(socket)));
      socket.once('connect_error', (err) => {
        socket.close();
        reject(err);
      });
    });
  }

  request(name: string, payload?: unknown, timeoutMs = 10000): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const callback = (err: Error | null, reply: Reply) => (err ? reject(new Error(`${name}: no reply`)) : resolve(reply));
      if (payload === undefined) this.socket.timeout(timeoutMs).emit(name, callback);
      else this.socket.timeout(timeoutMs).emit(name, payload, callback);
    });
  }

  /** Like request(), but throws unless the reply is ok. */
  async ok(name: string, payload?: unknown): Promise<any> {
    const reply = await this.request(name, payload);
    if (!reply.ok) throw new Error(`${name} failed: ${reply.error.code}: ${reply.error.message}`);
    return reply;
  }

  /** Waits for an event matching the predicate, including one already received. */
  waitFor(name: string, predicate: (data: any) => boolean = () => true, timeoutMs = 10000): Promise<any> {
    const seen = this.events.find((e) => e.name === name && predicate(e.data));
    if (seen) return Promise.resolve(seen.data);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.off(name, listener);
        reject(new Error(`timed out waiting for ${name}`));
      }, timeoutMs);
      const listener = (data: any) => {
        if (!predicate(data)) return;
        clearTimeout(timer);
        this.socket.off(name, listener);
        resolve(data);
      };
      this.socket.on(name, listener);
    });
  }

  close(): void {
    this.socket.close();
  }
}

let ssrc = 100000;

/** RTP parameters as a sending client would give them, for producers without a browser. */
export function rtpParametersFor(kind: 'audio' | 'video') {
  ssrc += 1000;
  return kind === 'audio'
    ? {
        codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 } }],
        encodings: [{ ssrc }],
        headerExtensions: [],
        rtcp: { cname: `cname-${ssrc}` },
      }
    : {
        codecs: [
          {
            mimeType: 'video/VP8',
            payloadType: 101,
            clockRate: 90000,
            rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
          },
        ],
        encodings: [{ ssrc }],
        headerExtensions: [],
        rtcp: { cname: `cname-${ssrc}` },
      };
}

export const fakeDtlsParameters = {
  role: 'client',
  fingerprints: [{ algorithm: 'sha-256', value: Array.from({ length: 32 }, () => 'AB').join(':') }],
};

/** Joins and opens a send and a recv transport; returns ids for the tests. */
export async function joinWithTransports(client: TestClient, conferenceId: string, displayName: string) {
  const joined = await client.ok('join', { conferenceId, displayName });
  const send = (await client.ok('createTransport', { direction: 'send' })).transport.id as string;
  const recv = (await client.ok('createTransport', { direction: 'recv' })).transport.id as string;
  return { joined, send, recv };
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
