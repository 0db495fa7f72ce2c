// Memory bench: hub RSS idle, then the growth per conference, per peer and per
// device stream. The hub runs in its own process (garbage collected before
// each reading); RSS is the hub's Node process plus its mediasoup worker.
//   node dist/scripts/bench/memory.js [--conferences 20] [--peers 40] [--streams 20]
// A conference here is one joined peer with a send and a recv transport; a peer
// is one more such peer in one conference; a device stream is one ECG device of
// a site agent streaming 240 readings/s into a conference with one viewer.
// Writes bench-results/memory.json.

import './support/quiet.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { io, type Socket } from 'socket.io-client';
import { agentConfigOf } from '../../src/agent/config.js';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { DeviceDriver, type ReadingSink } from '../../src/devices/driver.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import { parseSiteConfig } from '../../src/devices/siteConfig.js';
import { Authenticator } from '../../src/auth/index.js';
import { printTable, rssOf, sleep, writeResults } from './support/common.js';
import { BENCH_SECRET, HubProcess } from './support/hubProcess.js';

const { values } = parseArgs({
  options: { conferences: { type: 'string', default: '20' }, peers: { type: 'string', default: '40' }, streams: { type: 'string', default: '20' } },
});

const hub = await HubProcess.start();
const sockets: Socket[] = [];
const agents: SiteAgent[] = [];
const dirs: string[] = [];

async function measure(): Promise<{ node: number; worker: number; total: number }> {
  await sleep(1500);
  await hub.gc();
  const node = rssOf(hub.info.pid);
  const worker = hub.info.workerPids.reduce((sum, pid) => sum + rssOf(pid), 0);
  return { node, worker, total: node + worker };
}

function request(socket: Socket, name: string, payload: unknown): Promise<any> {
  return new Promise((resolve, reject) =>
    socket.emit(name, payload, (reply: { ok: boolean; error?: { message: string } }) => (reply.ok ? resolve(reply) : reject(new Error(`${name}: ${reply.error?.message}`)))),
  );
}

async function joinPeer(conferenceId: string, name: string): Promise<void> {
  const token = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: name, name, role: 'specialist', conf: conferenceId, ttlSeconds: 3600 });
  const socket = io(hub.info.url, { auth: { token }, transports: ['websocket'], forceNew: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  sockets.push(socket);
  await request(socket, 'join', { conferenceId, displayName: name });
  await request(socket, 'createTransport', { direction: 'send' });
  await request(socket, 'createTransport', { direction: 'recv' });
}

class EcgDriver extends DeviceDriver {
  readonly deviceIds: string[];
  #timer: NodeJS.Timeout | undefined;
  constructor(
    readonly deviceId: string,
    sink: ReadingSink,
  ) {
    super(sink);
    this.deviceIds = [deviceId];
  }
  async start(): Promise<void> {
    this.setStatus(this.deviceId, { status: 'online' });
    this.#timer = setInterval(() => {
      const t = Date.now();
      const chunk = Array.from({ length: 12 }, (_, lead) => ({ deviceId: this.deviceId, kind: 'waveform' as const, code: `MDC_ECG_ELEC_POTL_${lead}`, unit: 'mV', t, rt: t, sampleRate: 500, samples: Array.from({ length: 25 }, (_, i) => Math.sin(i + lead)) }));
      void this.deliver(chunk).catch(() => undefined);
    }, 50);
  }
  async stop(): Promise<void> {
    clearInterval(this.#timer);
  }
}

async function addDeviceStream(i: number): Promise<void> {
  const conferenceId = 'memory-devices';
  const dir = await mkdtemp(join(tmpdir(), 'hoichan-mem-'));
  dirs.push(dir);
  const siteId = `mem-site-${i}`;
  const site = parseSiteConfig({
    siteId,
    conferenceId,
    hub: { url: hub.info.url, token: Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'agent', siteId: siteId, name: siteId, conferences: [conferenceId], ttlSeconds: 3600 }) },
    journal: { dir },
    devices: [{ id: `mem-ecg-${i}`, type: 'ecg', model: 'bench', protocol: 'cms50', settings: { path: '/dev/null' } }],
  });
  agents.push(await SiteAgent.start(agentConfigOf(site), { factories: { ...defaultDriverFactories, cms50: (id, _s, sink) => new EcgDriver(id, sink) } }));
}

const rows: Record<string, unknown>[] = [];
const MiB = 2 ** 20;
try {
  const idle = await measure();
  rows.push({ step: 'idle hub (1 worker)', count: 0, 'node MiB': idle.node / MiB, 'worker MiB': idle.worker / MiB, 'total MiB': idle.total / MiB, 'per item KiB': NaN });
  let last = idle;
  const step = async (label: string, count: number, add: (i: number) => Promise<void>) => {
    for (let i = 0; i < count; i++) await add(i);
    const now = await measure();
    rows.push({ step: label, count, 'node MiB': now.node / MiB, 'worker MiB': now.worker / MiB, 'total MiB': now.total / MiB, 'per item KiB': (now.total - last.total) / count / 1024 });
    last = now;
  };
  const conferences = Number(values.conferences);
  const peers = Number(values.peers);
  const streams = Number(values.streams);
  await step('+ conferences (1 peer, 2 transports each)', conferences, (i) => joinPeer(`memory-conf-${i}`, `solo-${i}`));
  await step('+ peers in one conference (2 transports each)', peers, (i) => joinPeer('memory-big', `peer-${i}`));
  await joinPeer('memory-devices', 'device-viewer');
  last = await measure();
  await step('+ device streams (ECG 240 readings/s, 1 viewer)', streams, addDeviceStream);
} finally {
  for (const agent of agents) await agent.stop().catch(() => undefined);
  for (const s of sockets) s.close();
  await hub.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}
printTable('Memory: hub RSS (Node process + mediasoup worker), garbage collected before each reading', rows);
writeResults('memory', { rows });
process.exit(0);
