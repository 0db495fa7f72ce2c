// Join storm: N synthetic WebRTC clients (`hoichan loadtest`: socket.io
// signaling, ICE, DTLS, SRTP) join one conference at R per second, behind one
// publisher, against a hub in its own process: join ack and first-packet
// p50/p99, signaling errors (expected 0), ICE/DTLS failures, and the hub's
// event-loop delay through the storm. The delay is read where an engineer
// would read it on a live hub: /metrics (prom-client's monitorEventLoopDelay,
// reset at each scrape, so each 1 s scrape is one window). After the run the
// hub must hold nothing of the storm (sockets, peers, transports, consumers).
//   node dist/scripts/bench/join-storm.js [--clients 200] [--rate 20] [--media 10] [--workers 1]
// Writes bench-results/join-storm.json. Loopback only; bounded in clients and time.

import './support/quiet.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { printTable, sleep, writeResults } from './support/common.js';
import { eventLoopWindow, histogramQuantile, HubMetrics, signalingErrors, signalingErrorsByCode, sumOf, type Sample } from './support/hubMetrics.js';
import { HubProcess } from './support/hubProcess.js';
import { LoadtestProcess } from './support/loadtestProcess.js';
import { WindowCpu } from './support/windowCpu.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    media: { type: 'string', default: '10' },
    workers: { type: 'string', default: '1' },
    'idle-seconds': { type: 'string', default: '5' },
  },
});
const clients = Number(values.clients);
const rate = Number(values.rate);
const mediaSeconds = Number(values.media);
const workers = Number(values.workers);
const idleSeconds = Number(values['idle-seconds']);
for (const [name, v, max] of [['clients', clients, 1000], ['rate', rate, 100], ['media', mediaSeconds, 600], ['workers', workers, 8], ['idle-seconds', idleSeconds, 60]] as const) {
  if (!(Number.isFinite(v) && v > 0 && v <= max)) throw new Error(`--${name} must be a number in (0, ${max}]`);
}
/** Scrape period: each scrape closes one event-loop window. */
const WINDOW_MS = 1000;
const CONFERENCE = 'join-storm';
/** Longest wait for the hub to drop every peer after the clients closed: its 10 s reconnect grace, and margin. */
const LEAVE_WAIT_S = 30;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const round = (v: number, digits = 1) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

type Phase = 'idle' | 'joining' | 'media' | 'leaving';
interface Window {
  't s': number;
  phase: Phase;
  'subscribers joined': number;
  sockets: number;
  'requests/s': number;
  'loop p50 ms': number;
  'loop p99 ms': number;
  'loop max ms': number;
  'hub CPU %': number;
  'workers CPU %': number;
}

const hub = await HubProcess.start({ numWorkers: workers });
const metrics = new HubMetrics(hub.info.url);
const windows: Window[] = [];
let summary: Record<string, unknown> = {};
let after: Record<string, number> = {};
let report: LoadtestReport | undefined;
try {
  const requestsOf = (s: Sample[]) => sumOf(s, 'hoichan_signaling_requests_total');
  const hubCpu = new WindowCpu([hub.info.pid]);
  const workerCpu = new WindowCpu(hub.info.workerPids);
  let last = await metrics.scrape(); // opens the first event-loop window
  let lastAt = performance.now();
  const startedAt = lastAt;
  const closeWindow = async (phase: Phase, joined: number) => {
    const samples = await metrics.scrape();
    const now = performance.now();
    const loop = eventLoopWindow(samples);
    windows.push({
      't s': round((now - startedAt) / 1000),
      phase,
      'subscribers joined': joined,
      sockets: sumOf(samples, 'hoichan_signaling_sockets'),
      'requests/s': Math.round((requestsOf(samples) - requestsOf(last)) / ((now - lastAt) / 1000)),
      'loop p50 ms': round(loop.p50),
      'loop p99 ms': round(loop.p99),
      'loop max ms': round(loop.max),
      'hub CPU %': Math.round(hubCpu.next()),
      'workers CPU %': Math.round(workerCpu.next()),
    });
    last = samples;
    lastAt = now;
    return samples;
  };

  // The idle hub first: the event-loop figures of a hub doing nothing are the floor to compare with.
  for (let i = 0; i < idleSeconds; i++) {
    await sleep(WINDOW_MS);
    await closeWindow('idle', 0);
  }
  const before = last;

  const generator = new LoadtestProcess(
    hub.info.url,
    ['--conference', CONFERENCE, '--publishers', '1', '--subscribers', String(clients), '--join-rate', `${rate}/s`, '--duration', `${mediaSeconds}s`],
    clients / rate + mediaSeconds + 120,
  );
  let finished = false;
  const ended = generator.report.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished) {
    await Promise.race([sleep(WINDOW_MS), ended]);
    const p = generator.progress;
    await closeWindow(finished ? 'leaving' : (p?.phase ?? 'joining'), p?.joined ?? 0);
  }
  report = await generator.report;
  const closedAt = performance.now();
  // Every client has closed its socket without a leave, as a browser tab that goes away: the hub keeps
  // each peer for signaling.reconnectGraceMs (10 s), then must let go of all of it (the conference
  // closes with its last peer). Wait for that, bounded.
  const held = (s: Sample[]) => {
    const objects = (type: string) => sumOf(s, 'hoichan_worker_objects', { type });
    return {
      conferences: sumOf(s, 'hoichan_conferences'),
      sockets: sumOf(s, 'hoichan_signaling_sockets'),
      routers: objects('router'),
      transports: objects('transport'),
      producers: objects('producer'),
      consumers: objects('consumer'),
    };
  };
  for (let i = 0; i < LEAVE_WAIT_S; i++) {
    await sleep(WINDOW_MS);
    await closeWindow('leaving', 0);
    if (Object.values(held(last)).every((n) => n === 0)) break;
  }
  const end = last;
  after = { ...held(end), 'seconds after the last close': Math.round((performance.now() - closedAt) / 1000) };

  const stages = report.failures.byStage;
  const iceDtls = stages['ice/dtls'] ?? 0;
  const socket = stages.socket ?? 0;
  const signalingFailures = report.failures.total - iceDtls - socket;
  const phase = (p: Phase) => windows.filter((w) => w.phase === p);
  const worst = (ws: Window[], key: 'loop p99 ms' | 'loop max ms') => (ws.length ? Math.max(...ws.map((w) => w[key])) : NaN);
  const mean = (ws: Window[], key: 'hub CPU %' | 'workers CPU %') => (ws.length ? Math.round(ws.reduce((s, w) => s + w[key], 0) / ws.length) : NaN);
  const video = report.tracks.find((t) => t.kind === 'video');
  const joinHub = (q: number) => histogramQuantile(before, end, 'hoichan_signaling_request_duration_seconds', { request: 'join' }, q) * 1000;
  summary = {
    clients: `${clients} + 1 publisher`,
    'rate /s': rate,
    'join ack p50 ms': round(report.join.p50Ms, 0),
    'join ack p99 ms': round(report.join.p99Ms, 0),
    'join ack max ms': round(report.join.maxMs, 0),
    'hub join p50 / p99 ms (≤ bucket)': `${joinHub(0.5)} / ${joinHub(0.99)}`,
    'first video p50 ms': round(report.join.firstVideoP50Ms, 0),
    'first video p99 ms': round(report.join.firstVideoP99Ms, 0),
    'first audio p50 ms': round(report.join.firstAudioP50Ms, 0),
    'first audio p99 ms': round(report.join.firstAudioP99Ms, 0),
    'signaling errors (hub)': signalingErrors(end) - signalingErrors(before),
    'signaling failures (clients)': signalingFailures,
    'ICE/DTLS failures': iceDtls,
    'socket drops': socket,
    'video loss %': round(video?.lossPercent ?? NaN, 3),
  };
  const loop = {
    'idle loop p99 / max ms': `${worst(phase('idle'), 'loop p99 ms')} / ${worst(phase('idle'), 'loop max ms')}`,
    'storm loop p99 / max ms (worst 1 s)': `${worst(phase('joining'), 'loop p99 ms')} / ${worst(phase('joining'), 'loop max ms')}`,
    'media loop p99 / max ms': `${worst(phase('media'), 'loop p99 ms')} / ${worst(phase('media'), 'loop max ms')}`,
    'leave loop p99 / max ms': `${worst(phase('leaving'), 'loop p99 ms')} / ${worst(phase('leaving'), 'loop max ms')}`,
    'hub CPU % (storm mean)': mean(phase('joining'), 'hub CPU %'),
    'workers CPU % (storm mean)': mean(phase('joining'), 'workers CPU %'),
    'generator CPU %': Math.round(report.generatorCpuPercent),
    loadavg: loadavg(),
  };
  printTable('Hub /metrics, one row per 1 s scrape (event-loop delay of that second, prom-client monitorEventLoopDelay at 10 ms resolution)', windows as unknown as Record<string, unknown>[]);
  printTable(`Join storm: ${clients} WebRTC subscribers at ${rate}/s into one conference (hoichan loadtest, ${workers} worker${workers > 1 ? 's' : ''})`, [summary]);
  printTable('Hub event-loop delay and CPU by phase', [loop]);
  printTable('Left on the hub after every client closed and the 10 s reconnect grace passed (expected all 0)', [after]);
  const byCode = signalingErrorsByCode(end);
  if (Object.keys(byCode).length) console.log(`hub signaling errors by request and code (whole run): ${JSON.stringify(byCode)}`);
  for (const e of report.failures.examples) console.log(`  client failure: ${e}`);
  summary = { ...summary, ...loop };
} finally {
  await hub.close();
}
writeResults('join-storm', { clients, rate, mediaSeconds, workers, summary, after, windows, report });
process.exit(0);
