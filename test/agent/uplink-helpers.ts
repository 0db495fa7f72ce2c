// Shared by the uplink tests: a viewer that checks each device's seqs arrive
// once and in order, a TCP proxy to cut the agent's link, a fast synthetic
// device, site configs, and ports.

import { once } from 'node:events';
import { createServer, connect, type Server, type Socket as NetSocket } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import { DeviceDriver, type ReadingSink } from '../../src/devices/driver.js';
import type { Reading } from '../../src/devices/reading.js';
import { agentConfigOf, type AgentConfig } from '../../src/agent/config.js';
import { parseSiteConfig, type SiteConfigInput } from '../../src/devices/siteConfig.js';
import type { Gap } from '../../src/streams/protocol.js';
import { agentToken, token } from '../support/hub.js';

// @ts-ignore chai 5 types (see journal-helpers.ts)
export { expect } from 'chai';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(25);
  }
}

/** A site agent credential: sub is the site id, for these conferences (as `hoichan token --role agent --site <siteId> --conference <id>` makes it). */
export function siteToken(siteId: string, conferences: string | string[]): string {
  return agentToken(siteId, conferences);
}

/** An agent config with test-friendly uplink timings. */
export function testAgentConfig(options: {
  siteId?: string;
  conferenceId?: string;
  hubUrl: string;
  journalDir: string;
  devices: SiteConfigInput['devices'];
  hub?: Record<string, unknown>;
  journal?: Record<string, unknown>;
}): AgentConfig {
  const siteId = options.siteId ?? 'site-test';
  const site = parseSiteConfig({
    siteId,
    conferenceId: options.conferenceId ?? 'conf-uplink',
    hub: { url: options.hubUrl, token: siteToken(siteId, options.conferenceId ?? 'conf-uplink'), reconnectMinMs: 100, reconnectMaxMs: 1000, ...options.hub },
    journal: { dir: options.journalDir, fsync: 'interval', ...options.journal },
    devices: options.devices,
  });
  return agentConfigOf(site);
}

/**
 * A socket.io viewer in a conference. It checks, per device, that every seq
 * arrives once and in order (gaps must be announced), and when it reconnects
 * (a hub restart) it passes the seqs it has in auth.deviceSeqs so the hub resumes.
 */
export class Viewer {
  readonly socket: Socket;
  /** Per device, the last seq accounted for (reading or announced gap). */
  readonly last = new Map<string, number>();
  /** Per device, every reading received, in arrival order (replays included once). */
  readonly readings = new Map<string, Reading[]>();
  readonly gaps = new Map<string, Gap[]>();
  readonly problems: string[] = [];
  readonly statuses: any[] = [];
  readonly alarms: any[] = [];
  joins = 0;
  devicesAtJoin: any[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
  }

  static async join(url: string, conferenceId: string, options: { resume?: boolean } = {}): Promise<Viewer> {
    const resume = options.resume ?? true;
    let viewer: Viewer | undefined;
    const socket = io(url, {
      auth: (cb) => cb({ token: token('specialist', conferenceId, 'viewer'), ...(resume && viewer ? { deviceSeqs: Object.fromEntries(viewer.last) } : {}) }),
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 500,
      forceNew: true,
    });
    viewer = new Viewer(socket);
    const v = viewer;
    socket.on('deviceReadings', (data: any) => v.take(data));
    // A hub that shuts down disconnects us deliberately, which socket.io does not retry by itself.
    socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect' && !v.closed) setTimeout(() => socket.connect(), 200);
    });
    socket.on('deviceStatus', (data: any) => v.statuses.push(data));
    socket.on('deviceAlarm', (data: any) => v.alarms.push(data));
    const joined = new Promise<void>((resolve, reject) => {
      socket.on('connect', () => {
        if (socket.recovered) return;
        socket.emit('join', { conferenceId, displayName: 'Viewer' }, (reply: any) => {
          if (!reply.ok) return reject(new Error(`join: ${reply.error.message}`));
          v.joins++;
          v.devicesAtJoin = reply.devices;
          resolve();
        });
      });
    });
    await joined;
    return viewer;
  }

  take(data: { deviceId: string; readings: Reading[]; gaps?: Gap[]; replay?: true }): void {
    const { deviceId } = data;
    const items: Array<{ from: number; to: number; reading?: Reading; gap?: Gap }> = [
      ...data.readings.map((r) => ({ from: r.seq, to: r.seq, reading: r })),
      ...(data.gaps ?? []).map((g) => ({ from: g.from, to: g.to, gap: g })),
    ].sort((a, b) => a.from - b.from);
    for (const item of items) {
      const last = this.last.get(deviceId);
      if (last !== undefined && item.from <= last) {
        if (!data.replay) this.problems.push(`${deviceId}: seq ${item.from} again or backwards (had up to ${last})`);
        continue;
      }
      // A late joiner's snapshot is recent waveforms plus the latest numerics: not contiguous by design.
      if (last !== undefined && item.from !== last + 1 && !data.replay) this.problems.push(`${deviceId}: seqs ${last + 1}..${item.from - 1} missing`);
      this.last.set(deviceId, item.to);
      if (item.reading) {
        let list = this.readings.get(deviceId);
        if (!list) this.readings.set(deviceId, (list = []));
        list.push(item.reading);
      } else {
        let list = this.gaps.get(deviceId);
        if (!list) this.gaps.set(deviceId, (list = []));
        list.push(item.gap!);
      }
    }
  }

  lastSeq(deviceId: string): number {
    return this.last.get(deviceId) ?? 0;
  }

  count(deviceId: string): number {
    return this.readings.get(deviceId)?.length ?? 0;
  }

  closed = false;

  close(): void {
    this.closed = true;
    this.socket.close();
  }
}

/** A loopback TCP proxy in front of the hub: cut() drops the agent's link and refuses new ones until restore(). */
export class TcpProxy {
  #server: Server | undefined;
  readonly #conns = new Set<NetSocket>();

  private constructor(
    readonly port: number,
    private targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), targetPort);
    await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  retarget(port: number): void {
    this.targetPort = port;
  }

  async restore(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.#conns.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#conns.delete(client);
        this.#conns.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.#server = server;
  }

  /** Drops every connection (no FIN reaches either side first) and stops listening. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const c of this.#conns) c.destroy();
    this.#conns.clear();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  async close(): Promise<void> {
    await this.cut();
  }
}

/**
 * A fast synthetic device for tests that need volume: every periodMs one
 * waveform chunk (25 samples) and, every numericEvery chunks, one numeric.
 * Values are a function of the running index so a test can check them.
 */
export class SyntheticDriver extends DeviceDriver {
  readonly deviceIds: readonly string[];
  #timer: NodeJS.Timeout | undefined;
  #index = 0;
  #inFlight = 0;
  refused = 0;
  readonly delivered = { waveforms: 0, numerics: 0 };

  constructor(
    deviceId: string,
    sink: ReadingSink,
    private readonly periodMs = 10,
    private readonly numericEvery = 5,
  ) {
    super(sink);
    this.deviceIds = [deviceId];
  }

  async start(): Promise<void> {
    this.setStatus(this.deviceIds[0]!, { status: 'online' });
    this.#timer = setInterval(() => void this.#tick(), this.periodMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#inFlight > 0) await sleep(5);
    this.setStatus(this.deviceIds[0]!, { status: 'offline', reason: 'stopped' });
  }

  // Not stop-and-wait: each tick delivers without waiting for the last (the journal keeps call order).
  async #tick(): Promise<void> {
    this.#inFlight++;
    const deviceId = this.deviceIds[0]!;
    const i = this.#index++;
    const t = Date.now();
    const batch: any[] = [
      { deviceId, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 2500, samples: Array.from({ length: 25 }, (_, k) => (i * 25 + k) % 1000) },
    ];
    if (i % this.numericEvery === 0) batch.push({ deviceId, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 60 + (i % 40) });
    try {
      await this.deliver(batch);
      this.delivered.waveforms++;
      if (batch.length > 1) this.delivered.numerics++;
    } catch {
      this.refused++; // journal full: the device would not be acknowledged
    }
    this.#inFlight--;
  }
}

/**
 * Writes `minutes` of readings straight into a journal, as an agent that was
 * offline that long would hold them: per device 10 waveform chunks and 1
 * numeric per second of device time, device times spread over the last
 * `minutes` (so the hub sees them as late). Producing 10 minutes takes ~1 s.
 */
export async function prefillJournal(dir: string, deviceIds: string[], minutes: number, chunksPerSecond = 10): Promise<number> {
  const { Journal } = await import('../../src/agent/journal/index.js');
  const journal = await Journal.open({ dir, fsync: 'never' });
  const seconds = minutes * 60;
  // The backlog ends 30 s before now, so all of it is older than the hub's late threshold when it arrives.
  const start = Date.now() - seconds * 1000 - 30_000;
  let total = 0;
  for (let s = 0; s < seconds; s += 10) {
    const batch: any[] = [];
    for (let ss = s; ss < s + 10 && ss < seconds; ss++) {
      for (const deviceId of deviceIds) {
        for (let c = 0; c < chunksPerSecond; c++) {
          const t = start + ss * 1000 + c * (1000 / chunksPerSecond);
          batch.push({ deviceId, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 250, samples: Array.from({ length: 25 }, (_, k) => ((ss * chunksPerSecond + c) * 25 + k) % 1000) });
        }
        const t = start + ss * 1000;
        batch.push({ deviceId, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 60 + (ss % 40) });
      }
    }
    await journal.append(batch);
    total += batch.length;
  }
  await journal.close();
  return total;
}
