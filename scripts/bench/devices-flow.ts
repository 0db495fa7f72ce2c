// Device-flow bench: simulated sites, each a 12-lead ECG at 500 Hz (12 waveform
// readings of 25 samples every 50 ms) plus 1 Hz vitals (6 numerics) = 246
// readings/s, stream through the real path (driver -> SiteAgent journal ->
// uplink -> hub DeviceStreams -> socket.io viewer in the site's conference).
// Sites double until the viewers' p99 end-to-end latency (arrival - reading
// time, same clock) passes 100 ms. The same payloads then go through a bare
// socket.io broadcast server (emit -> room broadcast) for comparison.
// The hub and the bare server run in their own processes, so their CPU and RSS
// are their own; agents, emitters and viewers share the bench process.
//   node dist/scripts/bench/devices-flow.js [--ladder 1,2,4,8,16,32,48,64] [--window 6] [--budget 150]
// Writes bench-results/devices-flow.json.

import './support/quiet.js';
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Server as SocketServer } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { agentConfigOf } from '../../src/agent/config.js';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { DeviceDriver, type DeviceReadingBody, type ReadingSink } from '../../src/devices/driver.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import { parseSiteConfig } from '../../src/devices/siteConfig.js';
import { Authenticator } from '../../src/auth/index.js';
import { CpuMeter, percentile, printTable, rssOf, sleep, writeResults } from './support/common.js';
import { BENCH_SECRET, HubProcess } from './support/hubProcess.js';

const LEADS = ['I', 'II', 'III', 'AVR', 'AVL', 'AVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];
const VITALS: [string, string, number][] = [
  ['MDC_ECG_HEART_RATE', '/min', 72],
  ['MDC_PULS_OXIM_SAT_O2', '%', 97],
  ['MDC_PRESS_BLD_NONINV_SYS', 'mm[Hg]', 120],
  ['MDC_PRESS_BLD_NONINV_DIA', 'mm[Hg]', 80],
  ['MDC_RESP_RATE', '/min', 16],
  ['MDC_TEMP_BODY', 'Cel', 36.8],
];
const LATENCY_LIMIT_MS = 100;

function ecgChunk(deviceId: string, k: number): DeviceReadingBody[] {
  const t = Date.now();
  return LEADS.map((lead, li) => ({
    deviceId,
    kind: 'waveform',
    code: `MDC_ECG_ELEC_POTL_${lead}`,
    unit: 'mV',
    t,
    rt: t,
    sampleRate: 500,
    samples: Array.from({ length: 25 }, (_, i) => Math.round(Math.sin((k * 25 + i) / 40 + li) * 1200) / 1000),
  }));
}

function vitals(deviceId: string): DeviceReadingBody[] {
  const t = Date.now();
  return VITALS.map(([code, unit, value]) => ({ deviceId, kind: 'numeric', code, unit, t, rt: t, value }));
}

/** A driver that produces on a timer, as a device would. */
class TimedDriver extends DeviceDriver {
  readonly deviceIds: string[];
  #timer: NodeJS.Timeout | undefined;
  #k = 0;
  constructor(
    readonly deviceId: string,
    readonly everyMs: number,
    readonly make: (deviceId: string, k: number) => DeviceReadingBody[],
    sink: ReadingSink,
  ) {
    super(sink);
    this.deviceIds = [deviceId];
  }
  async start(): Promise<void> {
    this.setStatus(this.deviceId, { status: 'online' });
    this.#timer = setInterval(() => void this.deliver(this.make(this.deviceId, this.#k++)).catch(() => undefined), this.everyMs);
  }
  async stop(): Promise<void> {
    clearInterval(this.#timer);
  }
}

/** Arrival latencies of every reading a viewer gets, for the current window. */
class Latencies {
  values: number[] = [];
  record(readings: { t: number; rt?: number }[]): void {
    const now = Date.now();
    for (const r of readings) this.values.push(now - (r.rt ?? r.t));
  }
}

interface Flow {
  url: string;
  serverPids: number[];
  addSite(index: number, latencies: Latencies): Promise<void>;
  close(): Promise<void>;
}

async function hoichanFlow(fsync: 'interval' | 'always'): Promise<Flow> {
  const hub = await HubProcess.start();
  const agents: SiteAgent[] = [];
  const viewers: Socket[] = [];
  const dirs: string[] = [];
  return {
    url: hub.info.url,
    serverPids: [hub.info.pid],
    async addSite(i, latencies) {
      const conferenceId = `flow-${i}`;
      const token = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: `viewer-${i}`, name: 'viewer', role: 'specialist', conf: conferenceId, ttlSeconds: 3600 });
      const viewer = io(hub.info.url, { auth: { token }, transports: ['websocket'], forceNew: true });
      viewer.on('deviceReadings', (data: { readings: { t: number; rt?: number }[]; replay?: boolean }) => {
        if (!data.replay) latencies.record(data.readings);
      });
      await new Promise<void>((resolve, reject) =>
        viewer.once('connect', () => viewer.emit('join', { conferenceId, displayName: 'viewer' }, (r: { ok: boolean }) => (r.ok ? resolve() : reject(new Error('viewer join failed'))))),
      );
      viewers.push(viewer);
      const dir = await mkdtemp(join(tmpdir(), 'hoichan-flow-'));
      dirs.push(dir);
      const siteId = `site-${i}`;
      const site = parseSiteConfig({
        siteId,
        conferenceId,
        hub: { url: hub.info.url, token: Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'agent', siteId: siteId, name: siteId, conferences: [conferenceId], ttlSeconds: 3600 }) },
        journal: { dir, fsync },
        devices: [
          { id: `ecg-${i}`, type: 'ecg', model: 'bench', protocol: 'cms50', settings: { path: '/dev/null' } },
          { id: `vitals-${i}`, type: 'vitals', model: 'bench', protocol: 'cyton', settings: { path: '/dev/null' } },
        ],
      });
      agents.push(
        await SiteAgent.start(agentConfigOf(site), {
          factories: {
            ...defaultDriverFactories,
            cms50: (id, _s, sink) => new TimedDriver(id, 50, ecgChunk, sink),
            cyton: (id, _s, sink) => new TimedDriver(id, 1000, vitals, sink),
          },
        }),
      );
    },
    async close() {
      for (const agent of agents) await agent.stop().catch(() => undefined);
      for (const v of viewers) v.close();
      await hub.close();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Bare socket.io: each site emits its batches, the server broadcasts them to the site's room. */
async function bareFlow(): Promise<Flow> {
  const child = fork(fileURLToPath(import.meta.url), ['--bare-server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve) => child.once('message', (m) => resolve(m as string)));
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  return {
    url,
    serverPids: [child.pid!],
    async addSite(i, latencies) {
      const room = `flow-${i}`;
      const viewer = io(url, { transports: ['websocket'], forceNew: true });
      viewer.on('deviceReadings', (data: { readings: { t: number; rt?: number }[] }) => latencies.record(data.readings));
      await new Promise<void>((resolve) => viewer.once('connect', () => viewer.emit('join', room, () => resolve())));
      const site = io(url, { transports: ['websocket'], forceNew: true });
      await new Promise<void>((resolve) => site.once('connect', () => resolve()));
      sockets.push(viewer, site);
      let k = 0;
      timers.push(setInterval(() => site.emit('readings', room, { deviceId: `ecg-${i}`, readings: ecgChunk(`ecg-${i}`, k++) }), 50));
      timers.push(setInterval(() => site.emit('readings', room, { deviceId: `vitals-${i}`, readings: vitals(`vitals-${i}`) }), 1000));
    },
    async close() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.close();
      child.kill();
    },
  };
}

function runBareServer(): void {
  const http = createServer();
  const server = new SocketServer(http, { serveClient: false });
  server.on('connection', (socket) => {
    socket.on('join', (room: string, ack: () => void) => void Promise.resolve(socket.join(room)).then(ack));
    socket.on('readings', (room: string, batch: unknown) => server.to(room).emit('deviceReadings', batch));
  });
  http.listen(0, '127.0.0.1', () => process.send!(`http://127.0.0.1:${(http.address() as AddressInfo).port}`));
  process.on('disconnect', () => process.exit(0));
}

interface Step {
  target: string;
  sites: number;
  readingsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPercent: number;
  serverRssMiB: number;
  benchCpuPercent: number;
}

async function ladderFor(target: string, makeFlow: () => Promise<Flow>, ladder: number[], windowMs: number, budgetMs: number): Promise<Step[]> {
  const flow = await makeFlow();
  const latencies = new Latencies();
  const steps: Step[] = [];
  const started = Date.now();
  let sites = 0;
  try {
    for (const n of ladder) {
      if (Date.now() - started > budgetMs) break;
      while (sites < n) await flow.addSite(sites++, latencies);
      await sleep(2000);
      latencies.values = [];
      const cpu = new CpuMeter(flow.serverPids);
      const bench = new CpuMeter([process.pid]);
      const t0 = performance.now();
      await sleep(windowMs);
      const seconds = (performance.now() - t0) / 1000;
      const values = latencies.values;
      const step: Step = {
        target,
        sites: n,
        readingsPerSec: Math.round(values.length / seconds),
        p50Ms: percentile(values, 0.5),
        p99Ms: percentile(values, 0.99),
        serverCpuPercent: cpu.percent(),
        serverRssMiB: rssOf(flow.serverPids[0]!) / 2 ** 20,
        benchCpuPercent: bench.percent(),
      };
      steps.push(step);
      console.log(`  ${target} sites=${n}: ${step.readingsPerSec} readings/s p50 ${step.p50Ms} ms p99 ${step.p99Ms} ms server cpu ${step.serverCpuPercent.toFixed(0)}%`);
      if (!(step.p99Ms <= LATENCY_LIMIT_MS)) break;
    }
  } finally {
    await flow.close();
  }
  return steps;
}

if (process.argv.includes('--bare-server')) {
  runBareServer();
} else {
  const { values } = parseArgs({
    options: {
      ladder: { type: 'string', default: '1,2,4,8,16,32,48,64' },
      window: { type: 'string', default: '6' },
      budget: { type: 'string', default: '150' },
    },
  });
  const ladder = values.ladder.split(',').map(Number);
  const windowMs = Number(values.window) * 1000;
  const budgetMs = Number(values.budget) * 1000;
  // The agent sends a reading once its journal has fsynced it: the default
  // 'interval' policy (group commit every 20 ms) adds up to that to each reading,
  // so the ladder also runs with 'always' (fsync per append, still grouped).
  const steps = [
    ...(await ladderFor('hoichan (fsync interval 20 ms, default)', () => hoichanFlow('interval'), ladder, windowMs, budgetMs)),
    ...(await ladderFor('hoichan (fsync always)', () => hoichanFlow('always'), ladder, windowMs, budgetMs)),
    ...(await ladderFor('bare-socket.io', bareFlow, ladder, windowMs, budgetMs)),
  ];
  const capacity = (target: string) => steps.filter((s) => s.target === target && s.p99Ms <= LATENCY_LIMIT_MS).reduce((m, s) => Math.max(m, s.sites), 0);
  printTable('Device flow: 12-lead ECG 500 Hz + 1 Hz vitals per site (246 readings/s), latency = viewer arrival - reading time', steps.map((s) => ({
    target: s.target,
    sites: s.sites,
    'readings/s': s.readingsPerSec,
    'p50 ms': s.p50Ms,
    'p99 ms': s.p99Ms,
    'server cpu %': s.serverCpuPercent,
    'server rss MiB': s.serverRssMiB,
    'bench cpu %': s.benchCpuPercent,
  })));
  const summary = {
    hoichanIntervalSites: capacity('hoichan (fsync interval 20 ms, default)'),
    hoichanAlwaysSites: capacity('hoichan (fsync always)'),
    bareSites: capacity('bare-socket.io'),
    limitMs: LATENCY_LIMIT_MS,
  };
  console.log(`\nsites under p99 ${LATENCY_LIMIT_MS} ms: hoichan fsync interval ${summary.hoichanIntervalSites}, fsync always ${summary.hoichanAlwaysSites}, bare socket.io ${summary.bareSites}`);
  writeResults('devices-flow', { ladder, windowSeconds: windowMs / 1000, steps, summary });
  process.exit(0);
}
