// WebRTC capacity bench, like for like: one 1.5 Mb/s presenter (+ opus), VP8
// or H.264 (--codecs: each codec a run of every target), to N subscribers,
// each a real libdatachannel peer of `hoichan loadtest` (ICE, DTLS, SRTP,
// receiver reports, NACKs on RTX, PLIs), against
//   - Hoichan, 1 worker;
//   - Hoichan, 2 workers, ONE conference spread over both (media.maxConsumersPerRouter
//     set per step so that half the consumers land on each worker's router);
//   - bare mediasoup (scripts/bench/bare/server.ts: one worker, the same
//     signaling subset, no auth/schemas/telemetry), the floor;
//   - Janus VideoRoom (Debian's janus): the same clients through its HTTP API
//     (scripts/bench/webrtc/janusClients.ts), with an explicit threading:
//     general.event_loops = --janus-event-loops (default 2, a fixed pool of
//     2 loop threads, as Hoichan's 2-worker row has 2 media processes; 0 is
//     Janus's default, a thread per handle; a list runs a Janus row per value).
// Every client runs in load generator processes apart from the SFU: one with
// the presenter, then ceil(N / --per-generator) with the subscribers
// (`--publishers 0`), each generator's CPU reported next to the SFU's, so a
// harness limit is never read as an SFU limit. The ladder of a target stops
// at the first step with >= 0.5 % video loss, a failure or a silent track,
// at a generator near a core, or when the target's time budget is spent.
//   node dist/scripts/bench/webrtc.js [--targets hoichan-1w,hoichan-2w,bare,janus]
//     [--ladder 25,50,100,150,200,300] [--duration 15] [--join-rate 20]
//     [--per-generator 100] [--budget 300] [--codecs vp8,h264] [--janus-event-loops 2]
// Writes bench-results/webrtc.json. Loopback only (Janus: see support/janus.ts).

import './support/quiet.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { OpsReport } from '../../src/contract/ops.js';
import { Authenticator } from '../../src/auth/index.js';
import type { VideoCodec } from '../../src/loadtest/media.js';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { startBareProcess } from './bare/server.js';
import { CpuMeter, PROJECT_ROOT, printTable, sleep, writeResults } from './support/common.js';
import { BENCH_SECRET, HubProcess } from './support/hubProcess.js';
import { ensureJanus, JanusServer, JanusSession } from './support/janus.js';

const ALL_TARGETS = ['hoichan-1w', 'hoichan-2w', 'bare', 'janus'] as const;
type TargetName = (typeof ALL_TARGETS)[number];

const { values } = parseArgs({
  options: {
    targets: { type: 'string', default: ALL_TARGETS.join(',') },
    ladder: { type: 'string', default: '25,50,100,150,200,300' },
    duration: { type: 'string', default: '15' },
    'join-rate': { type: 'string', default: '20' },
    'per-generator': { type: 'string', default: '100' },
    budget: { type: 'string', default: '300' },
    codecs: { type: 'string', default: 'vp8' },
    'janus-event-loops': { type: 'string', default: '2' },
  },
});
const targetNames = values.targets.split(',').map((t) => t.trim()) as TargetName[];
for (const t of targetNames) if (!ALL_TARGETS.includes(t)) throw new Error(`--targets: unknown ${t} (${ALL_TARGETS.join(', ')})`);
const ladder = values.ladder.split(',').map(Number);
const duration = Number(values.duration);
const joinRate = Number(values['join-rate']);
const perGenerator = Number(values['per-generator']);
const budgetSeconds = Number(values.budget);
const codecs = values.codecs.split(',').map((c): VideoCodec => {
  const codec = c.trim();
  if (codec !== 'vp8' && codec !== 'h264') throw new Error(`--codecs: unknown ${codec} (vp8, h264)`);
  return codec;
});
/** Janus's general.event_loops per Janus row: 0 = its default, a loop thread per handle. */
const janusEventLoops = values['janus-event-loops'].split(',').map((v) => v.trim());
for (const v of janusEventLoops) if (!/^\d+$/.test(v) || Number(v) > 64) throw new Error(`--janus-event-loops: ${v} is not a number of loops from 0 (a thread per handle) to 64`);
const LOSS_LIMIT = 0.5;
/** A generator above this share of a core may itself be dropping packets. */
const GENERATOR_LIMIT = 85;
/** Seconds a step costs besides its joins and media: SFU start, generator start-up, clip loading, close. */
const STEP_OVERHEAD_SECONDS = 15;

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** An SFU ready for one step: where the generators go and which processes are its cost. */
interface Sfu {
  /** hub URL (Hoichan, bare) or Janus's API base */
  url: string;
  /** 'hub': `hoichan loadtest` speaks to it; 'janus': scripts/bench/webrtc/janusLoad.js does */
  signaling: 'hub' | 'janus';
  conference: string;
  /** Node process of its signaling (none for Janus: one process does both) */
  nodePid?: number;
  /** processes that forward media: mediasoup workers, or Janus */
  mediaPids: number[];
  /** where the conference's consumers ended up, when the SFU can say */
  layout?(): Promise<string>;
  stop(): Promise<void>;
}

interface Target {
  name: string;
  /** what is set up, for the table */
  setup: string;
  /** the SFU for a step of n subscribers (one per step, or the same one again) */
  forStep(n: number, step: number): Promise<Sfu>;
  close(): Promise<void>;
}

/**
 * The hub processes' ports: their own, not support/hubProcess.ts's defaults, so
 * this bench runs beside another bench's hub (and a 2-worker hub of the previous
 * step never holds the next one's ports while its workers exit).
 */
const HUB_PORTS = { webRtcServerPort: 37600, rtcMinPort: 37700, rtcMaxPort: 38699 };
const shifted = (offset: number) => ({ ...HUB_PORTS, webRtcServerPort: HUB_PORTS.webRtcServerPort + offset });

/** One Hoichan hub process for the whole ladder. */
function hoichanOneWorker(): Target {
  let hub: HubProcess | undefined;
  return {
    name: 'hoichan 1 worker',
    setup: 'one conference, one router',
    async forStep(n, step) {
      if (hub) await previousStepGone(hub.info.url);
      hub ??= await onFreePorts((o) => HubProcess.start({ numWorkers: 1, ...shifted(o) }));
      return { url: hub.info.url, signaling: 'hub', conference: `webrtc-1w-${step}-n${n}`, nodePid: hub.info.pid, mediaPids: hub.info.workerPids, layout: () => layoutOf(hub!.info.url, `webrtc-1w-${step}-n${n}`), stop: async () => undefined };
    },
    async close() {
      await hub?.close();
    },
  };
}

/**
 * A hub with 2 workers per step, its media.maxConsumersPerRouter set to N + 1:
 * the N subscribers make 2N consumers (video + audio), the presenter counts
 * one while it consumes nothing, so the first router fills with the presenter
 * and half the subscribers and the conference opens its second router, on the
 * other worker, for the other half (src/media/Conference.ts #choose).
 */
function hoichanTwoWorkersOneConference(): Target {
  return {
    name: 'hoichan 2 workers',
    setup: 'ONE conference over both workers (maxConsumersPerRouter = N + 1: half the consumers per router)',
    async forStep(n, step) {
      const hub = await onFreePorts((o) => HubProcess.start({ numWorkers: 2, maxConsumersPerRouter: n + 1, ...shifted(o) }));
      const conference = `webrtc-2w-${step}-n${n}`;
      return { url: hub.info.url, signaling: 'hub', conference, nodePid: hub.info.pid, mediaPids: hub.info.workerPids, layout: () => layoutOf(hub.info.url, conference), stop: () => hub.close() };
    },
    async close() {},
  };
}

/** Port of the bare server's WebRtcServer (the join bench's is 39800). */
const BARE_WEBRTC_PORT = 39810;

/**
 * Starts something on fixed ports, moving them up by `step` when they are
 * taken: these ports lie in the kernel's ephemeral range, where another
 * process's outgoing socket can hold one for a while.
 */
async function onFreePorts<T>(start: (offset: number) => Promise<T>, step = 10, attempts = 5): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await start(i * step);
    } catch (err) {
      if (i + 1 >= attempts) throw err;
      console.log(`  ports taken (${(err as Error).message.split('\n')[0]}); moving up by ${step}`);
    }
  }
}

function bareMediasoup(): Target {
  let server: Awaited<ReturnType<typeof startBareProcess>> | undefined;
  return {
    name: 'bare mediasoup',
    setup: 'one worker, one router, same signaling subset, no auth/schemas/telemetry',
    async forStep(n, step) {
      server ??= await onFreePorts((o) => startBareProcess(BARE_WEBRTC_PORT + o), 1);
      return { url: server.url, signaling: 'hub', conference: `webrtc-bare-${step}-n${n}`, nodePid: server.pid, mediaPids: [server.workerPid], stop: async () => undefined };
    },
    async close() {
      await server?.close();
    },
  };
}

/** The first IPv4 address of this machine that is not loopback: where Janus's ICE can be met (support/janus.ts). */
function localNonLoopbackAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** How a Janus row is threaded, for its name and the table notes. */
const janusThreading = (eventLoops: number) => (eventLoops > 0 ? `event_loops = ${eventLoops}: ${eventLoops} loop threads shared by all handles` : 'event_loops unset (Janus default): a loop thread per handle');

function janus(iceAddress: string, codec: VideoCodec, eventLoops: number): Target {
  let server: JanusServer | undefined;
  let admin: { session: JanusSession; handle: number } | undefined;
  return {
    name: eventLoops > 0 ? `janus ${eventLoops} loops` : 'janus loop/handle',
    setup: `VideoRoom, WebRTC subscribers through the HTTP API (ICE on ${iceAddress}); ${janusThreading(eventLoops)}`,
    async forStep(_n, step) {
      // Its own ports, apart from HUB_PORTS and the other benches' hubs (31600.., 32000-33999).
      server ??= await JanusServer.start({ httpPort: 18000 + (process.pid % 1000), rtpPortRange: '34000-35999', iceAddress, eventLoops });
      if (!admin) {
        const session = await JanusSession.create(server.base);
        admin = { session, handle: await session.attach() };
      }
      const room = 5000 + step;
      // H.264: the profile the loadtest publisher offers and mediasoup's routers take (constrained baseline 3.1).
      const video = codec === 'h264' ? { videocodec: 'h264', h264_profile: '42e01f' } : { videocodec: 'vp8' };
      await admin.session.request(admin.handle, { request: 'create', room, publishers: 4, ...video, audiocodec: 'opus', notify_joining: false });
      const { session, handle } = admin;
      return {
        url: server.base,
        signaling: 'janus',
        conference: String(room),
        mediaPids: [server.pid],
        stop: async () => {
          await session.request(handle, { request: 'destroy', room }).catch(() => undefined);
        },
      };
    },
    async close() {
      await admin?.session.close();
      await server?.stop();
    },
  };
}

/** The conference's routers per worker, from the hub's /api/ops (an engineer token of the bench secret). */
/**
 * The previous step's clients close without `leave`, as closed tabs do, so the hub keeps their peers and
 * transports for its reconnect grace (10 s). A step started meanwhile has its clients bind UDP ports the kernel
 * hands out again, and mediasoup's WebRtcServer matches a STUN request by its source tuple before its ICE
 * username: a client whose ip:port a stale transport still holds cannot connect (docs/PERFORMANCE.md section 6).
 * The 1-worker hub lives through its ladder, so each step waits until the hub holds no conference.
 */
async function previousStepGone(hubUrl: string, timeoutMs = 30_000): Promise<void> {
  const token = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: 'bench-engineer', name: 'bench', role: 'engineer', conf: '*', ttlSeconds: 600 });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(`${hubUrl}/api/ops`, { headers: { authorization: `Bearer ${token}` } });
    if (((await res.json()) as OpsReport).conferences.length === 0) return;
    await sleep(500);
  }
  throw new Error(`the hub still holds the previous step's conference ${timeoutMs / 1000} s after it ended`);
}

async function layoutOf(hubUrl: string, conferenceId: string): Promise<string> {
  const token = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: 'bench-engineer', name: 'bench', role: 'engineer', conf: '*', ttlSeconds: 600 });
  try {
    const res = await fetch(`${hubUrl}/api/ops`, { headers: { authorization: `Bearer ${token}` } });
    const ops = (await res.json()) as OpsReport;
    const conference = ops.conferences.find((c) => c.conferenceId === conferenceId);
    if (!conference) return 'conference not found';
    return conference.routers.map((r) => `w${r.workerSlot}: ${r.peers} peers/${r.consumers} consumers`).join(', ') + (conference.pipes ? `, ${conference.pipes} pipes` : '');
  } catch (err) {
    return `ops unavailable: ${(err as Error).message}`;
  }
}

/** A load generator process: `hoichan loadtest --json`, or janusLoad.js for Janus; its report and its "media" phase. */
class Generator {
  readonly report: Promise<LoadtestReport>;
  readonly media: Promise<void>;
  readonly child: ChildProcess;
  #stderr = '';

  constructor(sfu: Sfu, codec: VideoCodec, publishers: number, subscribers: number, seconds: number, rate: number) {
    const common = ['--publishers', String(publishers), '--subscribers', String(subscribers), '--duration', `${Math.ceil(seconds)}`, '--join-rate', `${rate}`, '--video', codec];
    const args =
      sfu.signaling === 'hub'
        ? [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'loadtest', '--hub', sfu.url, '--conference', sfu.conference, ...common, '--json']
        : [join(PROJECT_ROOT, 'dist', 'scripts', 'bench', 'webrtc', 'janusLoad.js'), '--janus', sfu.url, '--room', sfu.conference, ...common];
    this.child = spawn(process.execPath, args, { env: { ...process.env, HOICHAN_JWT_SECRET: BENCH_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    this.child.stdout!.on('data', (d: Buffer) => (out += d));
    let onMedia: () => void = () => undefined;
    this.media = new Promise((resolve) => (onMedia = resolve));
    this.child.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
      // run.ts's progress line once every client joined: "[12s] media 0/15s: ..."
      if (/\] media \d/.test(this.#stderr)) onMedia();
    });
    // The run bounds itself; this is the backstop for a wedged child.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), (seconds + 120 + subscribers / Math.max(0.1, rate)) * 1000);
    this.report = new Promise((resolve, reject) => {
      this.child.on('exit', () => {
        clearTimeout(timer);
        onMedia();
        try {
          resolve(JSON.parse(out) as LoadtestReport);
        } catch {
          reject(new Error(`generator gave no report: ${this.#stderr.split('\n').slice(-5).join('\n')}`));
        }
      });
    });
    this.report.catch(() => undefined);
  }

  /** Ends the run early (it still reports): the presenter's generator, once the subscribers are done. */
  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGINT');
  }
}

type Row = {
  codec: string;
  target: string;
  N: number;
  generators: number;
  'video loss %': number;
  'audio loss %': number;
  'kb/s per viewer': number;
  'silent tracks': number;
  'join p50 ms': number;
  'join p99 ms': number;
  'first video p99 ms': number;
  failures: number;
  'NACKs sent': number;
  'SFU node CPU %': number | string;
  'SFU media CPU %': string;
  'SFU total CPU %': number;
  'generators CPU %': number;
  'busiest generator %': number;
  layout: string;
  loadavg: string;
};

/** One step: the presenter's generator, then the subscribers' generators once it sends; the row. */
async function step(target: Target, codec: VideoCodec, sfu: Sfu, n: number): Promise<{ row: Row; reports: LoadtestReport[] }> {
  const joinSeconds = n / joinRate;
  const presenter = new Generator(sfu, codec, 1, 0, duration + joinSeconds + 60, joinRate);
  await Promise.race([presenter.media, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  const generators = Math.max(1, Math.ceil(n / perGenerator));
  const shares = Array.from({ length: generators }, (_, i) => Math.floor(n / generators) + (i < n % generators ? 1 : 0));
  const nodeCpu = sfu.nodePid ? new CpuMeter([sfu.nodePid]) : undefined;
  const mediaCpu = sfu.mediaPids.map((pid) => new CpuMeter([pid]));
  // The subscribers' generators share the join rate, so the SFU sees the same joins per second whatever their number.
  const subscribers = shares.map((s) => new Generator(sfu, codec, 0, s, duration, joinRate / generators));
  let layout = '';
  void Promise.all(subscribers.map((g) => g.media)).then(async () => {
    layout = (await sfu.layout?.()) ?? '';
  });
  const settled = await Promise.allSettled(subscribers.map((g) => g.report));
  const nodePercent = nodeCpu?.percent();
  const mediaPercents = mediaCpu.map((m) => m.percent());
  presenter.stop();
  const presenterReport = await presenter.report.catch(() => undefined);
  const reports = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const missing = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : []));
  const track = (kind: string) => reports.flatMap((r) => r.tracks.filter((t) => t.kind === kind));
  const lossOf = (kind: string) => {
    const ts = track(kind);
    const packets = ts.reduce((s, t) => s + t.packets, 0);
    const lost = ts.reduce((s, t) => s + t.lost, 0);
    return packets + lost ? (100 * lost) / (packets + lost) : 0;
  };
  const videos = track('video');
  const generatorCpus = [...reports, ...(presenterReport ? [presenterReport] : [])].map((r) => r.generatorCpuPercent);
  const mediaTotal = mediaPercents.reduce((a, b) => a + b, 0);
  const row: Row = {
    codec,
    target: target.name,
    N: n,
    generators: generators + 1,
    'video loss %': lossOf('video'),
    'audio loss %': lossOf('audio'),
    'kb/s per viewer': videos.reduce((s, t) => s + t.bitrateKbpsPerTrack * t.tracks, 0) / Math.max(1, videos.reduce((s, t) => s + t.tracks, 0)),
    // Every subscriber should have a video and an audio track: one that never got its consumers is silent too.
    'silent tracks':
      reports.reduce((s, r) => s + r.tracks.reduce((a, t) => a + t.silentTracks, 0), 0) +
      Math.max(0, 2 * reports.reduce((s, r) => s + r.subscribers, 0) - track('video').concat(track('audio')).reduce((s, t) => s + t.tracks, 0)),
    'join p50 ms': Math.max(...reports.map((r) => r.join.p50Ms)),
    'join p99 ms': Math.max(...reports.map((r) => r.join.p99Ms)),
    'first video p99 ms': Math.max(...reports.map((r) => r.join.firstVideoP99Ms)),
    // A generator that gave no report counts all its subscribers as failed; a presenter that failed counts one.
    failures:
      reports.reduce((s, r) => s + r.failures.total, 0) +
      settled.reduce((s, r, i) => s + (r.status === 'rejected' ? shares[i]! : 0), 0) +
      (presenterReport ? presenterReport.failures.total : 1),
    'NACKs sent': videos.reduce((s, t) => s + t.nacksSent, 0),
    'SFU node CPU %': nodePercent ?? '-',
    'SFU media CPU %': mediaPercents.map((p) => p.toFixed(1)).join(' + '),
    'SFU total CPU %': (nodePercent ?? 0) + mediaTotal,
    'generators CPU %': generatorCpus.reduce((a, b) => a + b, 0),
    'busiest generator %': Math.max(0, ...generatorCpus),
    layout,
    loadavg: loadavg(),
  };
  for (const m of missing) console.log(`    generator: ${m}`);
  for (const r of [...reports, ...(presenterReport ? [presenterReport] : [])]) for (const e of r.failures.examples) console.log(`    failure: ${e}`);
  if (!presenterReport) console.log('    presenter: its generator gave no report');
  return { row, reports };
}

const rows: Row[] = [];
type Best = { codec: string; target: string; setup: string; 'largest N': number | string; 'stopped by': string; 'SFU total CPU % at N': number | string; 'SFU CPU % per viewer': number | string; 'generators CPU % at N': number | string; 'busiest generator % at N': number | string };
const best: Best[] = [];

/** The targets of one --targets name for one codec: a Janus row per --janus-event-loops value. */
function makeTargets(name: TargetName, codec: VideoCodec): (Target | { name: string; notRun: string })[] {
  switch (name) {
    case 'hoichan-1w':
      return [hoichanOneWorker()];
    case 'hoichan-2w':
      return [hoichanTwoWorkersOneConference()];
    case 'bare':
      return [bareMediasoup()];
    case 'janus': {
      const installed = ensureJanus();
      const address = localNonLoopbackAddress();
      return janusEventLoops.map(Number).map((loops) => {
        if (!installed.ok) return { name: `janus (${janusThreading(loops)})`, notRun: installed.reason };
        if (!address) return { name: `janus (${janusThreading(loops)})`, notRun: 'no non-loopback IPv4 address: Janus never gathers ICE candidates on loopback' };
        return janus(address, codec, loops);
      });
    }
  }
}

const startedAt = performance.now();
const runs = codecs.flatMap((codec) => targetNames.map((name) => ({ codec, name })));
for (const { codec, name } of runs) for (const target of makeTargets(name, codec)) {
  if ('notRun' in target) {
    console.log(`${codec} ${target.name}: NOT RUN: ${target.notRun}`);
    best.push({ codec, target: target.name, setup: '-', 'largest N': 'NOT RUN', 'stopped by': target.notRun, 'SFU total CPU % at N': '-', 'SFU CPU % per viewer': '-', 'generators CPU % at N': '-', 'busiest generator % at N': '-' });
    continue;
  }
  console.log(`${codec} ${target.name} (${target.setup}), time budget ${budgetSeconds} s`);
  const entry: Best = { codec, target: target.name, setup: target.setup, 'largest N': 0, 'stopped by': 'ladder end', 'SFU total CPU % at N': '-', 'SFU CPU % per viewer': '-', 'generators CPU % at N': '-', 'busiest generator % at N': '-' };
  best.push(entry);
  const targetStart = performance.now();
  try {
    for (const [i, n] of ladder.entries()) {
      const spent = (performance.now() - targetStart) / 1000;
      const needs = n / joinRate + duration + STEP_OVERHEAD_SECONDS;
      if (spent + needs > budgetSeconds) {
        entry['stopped by'] = `time budget (${budgetSeconds} s) before N=${n}`;
        break;
      }
      let sfu: Sfu;
      try {
        sfu = await target.forStep(n, i);
      } catch (err) {
        entry['largest N'] = entry['largest N'] === 0 ? 'NOT RUN' : entry['largest N'];
        entry['stopped by'] = `could not start: ${(err as Error).message.split('\n')[0]}`;
        console.log(`  ${target.name}: ${entry['stopped by']}`);
        break;
      }
      let result: Awaited<ReturnType<typeof step>>;
      try {
        result = await step(target, codec, sfu, n).finally(() => sfu.stop());
      } catch (err) {
        entry['stopped by'] = `N=${n}: ${(err as Error).message.split('\n')[0]}`;
        console.log(`  ${target.name}: ${entry['stopped by']}`);
        break;
      }
      const { row, reports } = result;
      rows.push(row);
      console.log(
        `  ${codec} ${target.name} N=${n}: video loss ${row['video loss %'].toFixed(3)} %, ${row.failures} failures, SFU ${row['SFU total CPU %'].toFixed(0)} % (media ${row['SFU media CPU %']}), generators ${row['generators CPU %'].toFixed(0)} % (busiest ${row['busiest generator %'].toFixed(0)} %)${row.layout ? `, ${row.layout}` : ''}`,
      );
      const generatorBound = row['busiest generator %'] > GENERATOR_LIMIT;
      if (row.failures > 0 || row['video loss %'] >= LOSS_LIMIT || row['silent tracks'] > 0 || reports.length === 0) {
        entry['stopped by'] = `N=${n}: ${row.failures} failures, ${row['video loss %'].toFixed(2)} % loss, ${row['silent tracks']} silent${generatorBound ? ' (a generator near a core: harness-limited)' : ''}`;
        break;
      }
      entry['largest N'] = n;
      entry['SFU total CPU % at N'] = row['SFU total CPU %'];
      entry['SFU CPU % per viewer'] = row['SFU total CPU %'] / n;
      entry['generators CPU % at N'] = row['generators CPU %'];
      entry['busiest generator % at N'] = row['busiest generator %'];
      if (generatorBound) {
        entry['stopped by'] = `a generator near a core at N=${n}: the harness, not the SFU, is the limit`;
        break;
      }
    }
  } finally {
    await target.close();
  }
}

const minutes = ((performance.now() - startedAt) / 60000).toFixed(1);
const janusNote = targetNames.includes('janus') ? `; Janus ${janusEventLoops.map((v) => janusThreading(Number(v))).join(' / ')}` : '';
for (const codec of codecs) {
  const label = codec === 'vp8' ? 'VP8' : 'H.264';
  printTable(`WebRTC subscribers of one 1.5 Mb/s ${label} presenter + opus (hoichan loadtest clients, ${duration} s of media per step, joins at ${joinRate}/s${janusNote})`, rows.filter((r) => r.codec === codec));
  printTable(`${label}: largest N under ${LOSS_LIMIT} % video loss with no failure, per target (one run of ${codecs.join(' + ')}, ${minutes} min)`, best.filter((b) => b.codec === codec));
}
writeResults('webrtc', { codecs, janusEventLoops: janusEventLoops.map(Number), duration, joinRate, ladder, perGenerator, budgetSeconds, rows, best });
process.exit(0);
