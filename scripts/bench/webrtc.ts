// WebRTC capacity bench: one 1.5 Mb/s VP8 presenter (+ opus) to N WebRTC
// subscribers, each a real libdatachannel peer of `hoichan loadtest` (ICE,
// DTLS, SRTP, receiver reports, NACKs), against Hoichan with 1 and 2 workers.
// A conference lives on one worker, so with W workers the N subscribers are
// split over W conferences of one presenter each (W load generator processes):
// the question answered is "how many viewers does this machine carry".
// Per step: loss, bitrate per viewer, join times, failures, and the CPU of the
// hub's Node process, of its mediasoup workers and of the load generators, so
// a harness limit is not mistaken for an SFU limit. The ladder stops at the
// first step with >= 0.5 % video loss, a failure, or a generator near a core.
//   node dist/scripts/bench/webrtc.js [--workers 1,2] [--ladder 10,25,50,100,150,200,300] [--duration 15]
// Writes bench-results/webrtc.json. Loopback only; every step is bounded in time.

import './support/quiet.js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { CpuMeter, PROJECT_ROOT, printTable, writeResults } from './support/common.js';
import { BENCH_SECRET, HubProcess } from './support/hubProcess.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2' },
    ladder: { type: 'string', default: '10,25,50,100,150,200,300' },
    duration: { type: 'string', default: '15' },
    'join-rate': { type: 'string', default: '20' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const ladder = values.ladder.split(',').map(Number);
const duration = Number(values.duration);
const LOSS_LIMIT = 0.5;
/** A generator above this share of a core may itself be dropping packets. */
const GENERATOR_LIMIT = 85;

/** One `hoichan loadtest --json` process; resolves with its report. */
function loadtest(hubUrl: string, conference: string, subscribers: number): Promise<LoadtestReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'loadtest', '--hub', hubUrl, '--conference', conference, '--publishers', '1', '--subscribers', String(subscribers), '--duration', `${duration}s`, '--join-rate', `${values['join-rate']}/s`, '--json'],
      { env: { ...process.env, HOICHAN_JWT_SECRET: BENCH_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    // The run bounds itself; this is the backstop for a wedged child.
    const timer = setTimeout(() => child.kill('SIGKILL'), (duration + 120 + subscribers / 2) * 1000);
    child.on('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as LoadtestReport);
      } catch {
        reject(new Error(`loadtest gave no report: ${err.split('\n').slice(-5).join('\n')}`));
      }
    });
  });
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

type Row = {
  target: string;
  N: number;
  'video loss %': number;
  'audio loss %': number;
  'kb/s per viewer': number;
  'silent tracks': number;
  'join p50 ms': number;
  'join p99 ms': number;
  'first video p99 ms': number;
  failures: number;
  'NACKs sent': number;
  'hub node CPU %': number;
  'workers CPU %': number;
  'generators CPU %': number;
  loadavg: string;
};

const rows: Row[] = [];
const best: Record<string, { N: number; limitedBy: string }> = {};
for (const workers of workerCounts) {
  const target = `hoichan ${workers} worker${workers > 1 ? 's' : ''}`;
  const hub = await HubProcess.start({ numWorkers: workers });
  best[target] = { N: 0, limitedBy: 'ladder end' };
  try {
    for (const n of ladder) {
      const share = Array.from({ length: workers }, (_, i) => Math.floor(n / workers) + (i < n % workers ? 1 : 0));
      const hubCpu = new CpuMeter([hub.info.pid]);
      const workerCpu = new CpuMeter(hub.info.workerPids);
      const reports = await Promise.all(share.map((s, i) => loadtest(hub.info.url, `webrtc-w${workers}-n${n}-${i}`, s)));
      const hubPercent = hubCpu.percent();
      const workersPercent = workerCpu.percent();
      const track = (kind: string) => reports.map((r) => r.tracks.find((t) => t.kind === kind)!);
      const lossOf = (kind: string) => {
        const ts = track(kind);
        const packets = ts.reduce((s, t) => s + t.packets, 0);
        const lost = ts.reduce((s, t) => s + t.lost, 0);
        return packets + lost ? (100 * lost) / (packets + lost) : 0;
      };
      const videos = track('video');
      const row: Row = {
        target,
        N: n,
        'video loss %': lossOf('video'),
        'audio loss %': lossOf('audio'),
        'kb/s per viewer': videos.reduce((s, t) => s + t.bitrateKbpsPerTrack * t.tracks, 0) / Math.max(1, videos.reduce((s, t) => s + t.tracks, 0)),
        'silent tracks': reports.reduce((s, r) => s + r.tracks.reduce((a, t) => a + t.silentTracks, 0), 0),
        'join p50 ms': Math.max(...reports.map((r) => r.join.p50Ms)),
        'join p99 ms': Math.max(...reports.map((r) => r.join.p99Ms)),
        'first video p99 ms': Math.max(...reports.map((r) => r.join.firstVideoP99Ms)),
        failures: reports.reduce((s, r) => s + r.failures.total, 0),
        'NACKs sent': videos.reduce((s, t) => s + t.nacksSent, 0),
        'hub node CPU %': hubPercent,
        'workers CPU %': workersPercent,
        'generators CPU %': reports.reduce((s, r) => s + r.generatorCpuPercent, 0),
        loadavg: loadavg(),
      };
      rows.push(row);
      console.log(
        `  ${target} N=${n}: video loss ${row['video loss %'].toFixed(3)} %, ${row.failures} failures, workers ${workersPercent.toFixed(0)} %, generators ${row['generators CPU %'].toFixed(0)} %`,
      );
      for (const r of reports) for (const e of r.failures.examples) console.log(`    failure: ${e}`);
      const generatorBound = reports.some((r) => r.generatorCpuPercent > GENERATOR_LIMIT);
      if (row.failures > 0 || row['video loss %'] >= LOSS_LIMIT || row['silent tracks'] > 0) {
        best[target]!.limitedBy = `N=${n}: ${row.failures} failures, ${row['video loss %'].toFixed(2)} % loss${generatorBound ? ' (generator near a core: harness-limited)' : ''}`;
        break;
      }
      best[target]!.N = n;
      if (generatorBound) {
        best[target]!.limitedBy = `generator near a core at N=${n}: the harness, not the hub, is the limit`;
        break;
      }
    }
  } finally {
    await hub.close();
  }
}

printTable(`WebRTC subscribers of one 1.5 Mb/s VP8 presenter + opus (hoichan loadtest, ${duration} s per step)`, rows);
printTable(
  `Largest N under ${LOSS_LIMIT} % video loss`,
  Object.entries(best).map(([target, b]) => ({ target, 'largest N': b.N, 'stopped by': b.limitedBy })),
);
writeResults('webrtc', { duration, ladder, rows, best });
process.exit(0);
