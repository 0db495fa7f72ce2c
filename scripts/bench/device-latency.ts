// Device flow bench: end-to-end latency from a device frame to a viewer, and
// the catch-up after a 10-minute uplink outage. Not part of the test suite.
//   npx tsc -p tsconfig.json && node dist/scripts/bench/device-latency.js [--seconds 20]
// (npm run bench:devices). Prints a table, writes bench-results/device-latency.json.
//
// 1. Latency: the demo site (four simulators against the real drivers over
//    HL7/TCP, socat ptys and OPC UA, default journal fsync 'interval' 100 ms)
//    streams to a hub; a socket.io viewer in the conference takes, per reading,
//    its arrival time minus `rt` (when the driver decoded the frame; same clock).
// 2. Catch-up: a journal holding 10 minutes of a 12-lead 500 Hz ECG + vitals
//    site (246 readings/s, written straight into the journal, device times over
//    the last 10 minutes) is delivered by an agent at the configured catch-up
//    rate and with no limit, while another device of the site streams live:
//    its latency during the catch-up shows the backlog does not hold it up.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { io, type Socket } from 'socket.io-client';
import { agentConfigOf } from '../../src/agent/config.js';
import { Journal } from '../../src/agent/journal/index.js';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { loadConfig } from '../../src/config/load.js';
import { DemoSite } from '../../src/demo/demoSite.js';
import { DeviceDriver, type DeviceReadingBody, type ReadingSink } from '../../src/devices/driver.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import type { Reading } from '../../src/devices/reading.js';
import { parseSiteConfig } from '../../src/devices/siteConfig.js';
import { Hub } from '../../src/hub/Hub.js';
import { Authenticator } from '../../src/auth/index.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' } } });
const LATENCY_SECONDS = Number(values.seconds);
const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdefghi';
const LEADS = ['I', 'II', 'III', 'AVR', 'AVL', 'AVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];
const OUTAGE_S = 600;

interface Arrival {
  deviceId: string;
  seq: number;
  latencyMs: number;
  late: boolean;
  at: number;
}

class BenchViewer {
  readonly arrivals: Arrival[] = [];
  readonly last = new Map<string, number>();
  problems = 0;
  private constructor(readonly socket: Socket) {}

  static async join(url: string, conferenceId: string): Promise<BenchViewer> {
    const token = Authenticator.forSecret(SECRET).sign({ kind: 'person', sub: 'bench-viewer', name: 'Bench', role: 'specialist', conf: conferenceId, ttlSeconds: 3600 });
    const socket = io(url, { auth: { token }, transports: ['websocket'], forceNew: true });
    const viewer = new BenchViewer(socket);
    socket.on('deviceReadings', (data: { deviceId: string; readings: Reading[]; gaps?: { to: number }[]; replay?: boolean }) => {
      if (data.replay) return;
      const at = Date.now();
      for (const r of data.readings) {
        if (r.seq !== (viewer.last.get(r.deviceId) ?? 0) + 1) viewer.problems++;
        viewer.last.set(r.deviceId, r.seq);
        viewer.arrivals.push({ deviceId: r.deviceId, seq: r.seq, latencyMs: at - r.rt, late: r.late === true, at });
      }
    });
    await new Promise<void>((resolve, reject) =>
      socket.once('connect', () => socket.emit('join', { conferenceId, displayName: 'Bench' }, (reply: { ok: boolean }) => (reply.ok ? resolve() : reject(new Error('join failed'))))),
    );
    return viewer;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

async function startHub(): Promise<Hub> {
  const config = loadConfig({
    env: {},
    overrides: {
      http: { listenIp: '127.0.0.1', port: 0 },
      media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: 31000 + (process.pid % 250) * 2, workerLogLevel: 'error' },
      auth: { jwtSecret: SECRET, demo: false },
    },
  });
  return Hub.start(config);
}

const siteToken = (siteId: string, conf: string) => Authenticator.forSecret(SECRET).sign({ kind: 'agent', siteId: siteId, name: siteId, conferences: [conf], ttlSeconds: 3600 });

async function latencyRun(hub: Hub, fsync: 'interval' | 'always') {
  const conf = `bench-latency-${fsync}`;
  const viewer = await BenchViewer.join(hub.url, conf);
  const site = await DemoSite.start({ hubUrl: hub.url, token: siteToken('bench-site', conf), siteId: 'bench-site', conferenceId: conf, seed: 3, journal: { fsync } });
  // Let every driver connect before measuring.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const from = viewer.arrivals.length;
  await new Promise((resolve) => setTimeout(resolve, LATENCY_SECONDS * 1000));
  const arrivals = viewer.arrivals.slice(from);
  await site.stop();
  viewer.socket.close();
  const byDevice: Record<string, ReturnType<typeof summary>> = {};
  for (const id of new Set(arrivals.map((a) => a.deviceId))) byDevice[id] = summary(arrivals.filter((a) => a.deviceId === id).map((a) => a.latencyMs));
  return { fsync, seconds: LATENCY_SECONDS, readingsPerSecond: arrivals.length / LATENCY_SECONDS, all: summary(arrivals.map((a) => a.latencyMs)), byDevice, orderProblems: viewer.problems };
}

/** 10 minutes of a 12-lead 500 Hz ECG (25-sample chunks) + 6 vitals at 1 Hz, device times over the last 10 minutes. */
async function prefill(dir: string, deviceId: string): Promise<number> {
  const journal = await Journal.open({ dir, fsync: 'never' });
  const start = Date.now() - OUTAGE_S * 1000 - 5000;
  let total = 0;
  for (let s = 0; s < OUTAGE_S; s++) {
    const batch: DeviceReadingBody[] = [];
    for (let c = 0; c < 20; c++) {
      const t = start + s * 1000 + c * 50;
      for (const lead of LEADS) batch.push({ deviceId, kind: 'waveform', code: `MDC_ECG_ELEC_POTL_${lead}`, unit: 'mV', t, rt: t, sampleRate: 500, samples: Array.from({ length: 25 }, (_, k) => Math.round(Math.sin((c * 25 + k) / 8) * 1000) / 1000) });
    }
    const t = start + s * 1000;
    for (const code of ['MDC_ECG_HEART_RATE', 'MDC_PULS_OXIM_SAT_O2', 'MDC_PRESS_BLD_NONINV_SYS', 'MDC_PRESS_BLD_NONINV_DIA', 'MDC_RESP_RATE', 'MDC_TEMP_BODY']) {
      batch.push({ deviceId, kind: 'numeric', code, unit: '', t, rt: t, value: 70 });
    }
    await journal.append(batch);
    total += batch.length;
  }
  await journal.close();
  return total;
}

/** A live device of the same site: one numeric every 100 ms. */
class LiveDriver extends DeviceDriver {
  readonly deviceIds: string[];
  #timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly deviceId: string,
    sink: ReadingSink,
  ) {
    super(sink);
    this.deviceIds = [deviceId];
  }
  async start(): Promise<void> {
    this.setStatus(this.deviceId, { status: 'online' });
    this.#timer = setInterval(() => {
      const t = Date.now();
      void this.deliver([{ deviceId: this.deviceId, kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t, rt: t, value: 97 }]).catch(() => undefined);
    }, 100);
  }
  async stop(): Promise<void> {
    clearInterval(this.#timer);
  }
}

async function catchUpRun(hub: Hub, rate: number, label: string) {
  const dir = await mkdtemp(join(tmpdir(), 'hoichan-bench-catchup-'));
  try {
    const ecg = `ecg-12-${label}`;
    const live = `live-spo2-${label}`;
    const backlog = await prefill(dir, ecg);
    const conf = `bench-catchup-${label}`;
    const viewer = await BenchViewer.join(hub.url, conf);
    const site = parseSiteConfig({
      siteId: `bench-${label}`,
      conferenceId: conf,
      hub: { url: hub.url, token: siteToken(`bench-${label}`, conf), catchUpReadingsPerSecond: rate },
      journal: { dir },
      devices: [
        { id: ecg, type: 'ecg', model: 'bench', protocol: 'cms50', settings: { path: '/dev/null' } },
        { id: live, type: 'spo2', model: 'bench', protocol: 'cyton', settings: { path: '/dev/null' } },
      ],
    });
    const idle = class extends DeviceDriver {
      readonly deviceIds = [ecg];
      async start() {
        this.setStatus(ecg, { status: 'online' });
      }
      async stop() {}
    };
    const started = Date.now();
    const agent = await SiteAgent.start(agentConfigOf(site), {
      factories: { ...defaultDriverFactories, cms50: (_id, _s, sink) => new idle(sink), cyton: (_id, _s, sink) => new LiveDriver(live, sink) },
    });
    while ((viewer.last.get(ecg) ?? 0) < backlog) {
      if (Date.now() - started > 150_000) throw new Error(`catch-up (${label}) did not finish in 150 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const done = Date.now();
    await agent.stop();
    viewer.socket.close();
    const backlogArrivals = viewer.arrivals.filter((a) => a.deviceId === ecg);
    const first = backlogArrivals[0]!.at;
    const seconds = (done - first) / 1000;
    const liveArrivals = viewer.arrivals.filter((a) => a.deviceId === live && a.at <= done);
    return {
      label,
      configuredRate: rate === Infinity ? 'unlimited' : rate,
      backlogReadings: backlog,
      backlogMinutes: OUTAGE_S / 60,
      seconds,
      readingsPerSecond: backlog / seconds,
      timesRealtime: OUTAGE_S / seconds,
      allLate: backlogArrivals.every((a) => a.late),
      liveLatencyDuringCatchUp: summary(liveArrivals.map((a) => a.latencyMs)),
      orderProblems: viewer.problems,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const hub = await startHub();
try {
  console.log(`device latency: demo site for ${LATENCY_SECONDS} s ...`);
  const latency = [await latencyRun(hub, 'interval'), await latencyRun(hub, 'always')];
  console.log('catch-up after a 10-minute outage ...');
  const catchUp = [await catchUpRun(hub, 2000, 'default'), await catchUpRun(hub, 1_000_000, 'unlimited')];

  const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
  for (const run of latency) {
    console.log(`\nEnd-to-end latency, device frame decoded at the agent -> viewer, journal fsync '${run.fsync}'${run.fsync === 'interval' ? ' (20 ms, the agent default)' : ''}, ${fmt(run.readingsPerSecond)} readings/s`);
    console.log('device                 readings   p50 ms   p99 ms   max ms');
    for (const [id, s] of [...Object.entries(run.byDevice), ['ALL', run.all] as const]) {
      console.log(`${id.replace(/-(interval|always)$/, '').padEnd(22)} ${String(s.count).padStart(8)} ${fmt(s.p50).padStart(8)} ${fmt(s.p99).padStart(8)} ${fmt(s.max).padStart(8)}`);
    }
  }
  console.log(`\nCatch-up of a 10-minute outage (12-lead 500 Hz ECG + vitals, 246 readings/s)`);
  console.log('catch-up limit     readings   seconds   readings/s   x realtime   live p50/p99 ms   all late');
  for (const c of catchUp) {
    console.log(
      `${String(c.configuredRate).padEnd(18)} ${String(c.backlogReadings).padStart(8)} ${fmt(c.seconds).padStart(9)} ${fmt(c.readingsPerSecond).padStart(12)} ${fmt(c.timesRealtime).padStart(12)}   ${`${fmt(c.liveLatencyDuringCatchUp.p50)} / ${fmt(c.liveLatencyDuringCatchUp.p99)}`.padStart(15)}   ${c.allLate}`,
    );
  }
  await mkdir('bench-results', { recursive: true });
  await writeFile('bench-results/device-latency.json', JSON.stringify({ at: new Date().toISOString(), latency, catchUp }, null, 2));
  console.log('\nwrote bench-results/device-latency.json');
} finally {
  await hub.close();
}
process.exit(0);
