// SFU fan-out bench: ffmpeg sends one ~1.5 Mb/s 720p30 stream (VP8, then H.264
// baseline with packetization-mode 1) over RTP into the SFU, which forwards a
// copy to N PlainTransport/UDP receivers on loopback. Per N: SFU CPU, packets
// forwarded per second, loss at the receivers (from RTP sequence gaps), and the
// largest N under 0.5 % loss. The same stream and ladder run against Hoichan,
// a bare mediasoup script and Janus in the same run.
//   node dist/scripts/bench/sfu-fanout.js [--codecs VP8,H264] [--targets hoichan,bare-mediasoup,janus]
//        [--ladder 10,50,100,200,300,400,450,500,600,800,1000,1200,1400,1600] [--window 4] [--budget 100] [--pacing 2.5]
//        [--counter native|node]
// The receivers' packets are counted by a small C program (sfu/rtpcount.c, recvmmsg + epoll), built on
// first use: the Node counter spent a core before Janus did, so Janus's ceiling could not be seen.
// The stream is encoded once to a file and sent with -c copy, so the sender's CPU stays near zero;
// a pacer process (sfu/pacer.ts) spreads ffmpeg's per-frame bursts as a WebRTC sender would.
// Each window also reads the kernel's UDP drop counters of the SFU's ingest socket and of the
// receivers' sockets, so loss in a socket buffer is told apart from loss in the SFU.
// Writes bench-results/sfu-fanout.json. Loopback only; every step is bounded in time.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import './support/quiet.js';
import { CpuMeter, printTable, sleep, writeResults } from './support/common.js';
import type { PacerCommand, PacerReport } from './sfu/pacer.js';
import { buildRtpCounter, NativeReceivers } from './sfu/nativeCounter.js';
import type { ReceiverCommand, ReceiverReport } from './sfu/receivers.js';
import {
  BareMediasoupTarget,
  ensureJanus,
  ensureLegacyMediasoup,
  HoichanConferenceTarget,
  HoichanTarget,
  JanusTarget,
  LEGACY_MEDIASOUP,
  LegacyMediasoupTarget,
  sendRtp,
  type BenchCodec,
  type Ingest,
  type SfuTarget,
} from './sfu/targets.js';
import { sumDrops, udpDropsByPort, udpRcvbufErrors } from './sfu/udpDrops.js';
import { measurePipeCost, type PipeCost } from './sfu/pipeCost.js';

const { values } = parseArgs({
  options: {
    codecs: { type: 'string', default: 'VP8,H264' },
    // bare-mediasoup(-libuv): the pinned mediasoup with io_uring on (off); mediasoup-3.12.16: the previous pin.
    targets: { type: 'string', default: 'hoichan,bare-mediasoup,bare-mediasoup-libuv,mediasoup-3.12.16,janus' },
    ladder: { type: 'string', default: '10,50,100,200,300,400,450,500,600,800,1000,1200,1400,1600' },
    window: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    /** Seconds one target may spend on its ladder for one codec. */
    budget: { type: 'string', default: '100' },
    /** Pacing rate as a multiple of the stream's bitrate; 0 sends ffmpeg's bursts unpaced (to reproduce the ingest overflow). */
    pacing: { type: 'string', default: '2.5' },
    /** native: the C counter (sfu/rtpcount.c); node: the Node one (sfu/receivers.ts), for comparison. */
    counter: { type: 'string', default: 'native' },
    /** Streams for the pipe-cost measure (sfu/pipeCost.ts); 0 skips it. */
    'pipe-streams': { type: 'string', default: '12' },
  },
});
const codecs = values.codecs.split(',') as BenchCodec[];
const ladder = values.ladder.split(',').map(Number);
const windowMs = Number(values.window) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const budgetMs = Number(values.budget) * 1000;
const LOSS_LIMIT = 0.005;
/** The clips' target bitrate; the pacer sends at 2.5x it, libwebrtc's default pacing factor. */
const STREAM_BPS = 1_500_000;
const PACING_FACTOR = Number(values.pacing);

function makeTarget(name: string): SfuTarget {
  if (name === 'hoichan') return new HoichanTarget();
  // The conference's own placement and pipes: one worker, and two (the second router opens past media.maxConsumersPerRouter).
  if (name === 'hoichan-1w') return new HoichanConferenceTarget(1);
  if (name === 'hoichan-2w') return new HoichanConferenceTarget(2);
  if (name === 'bare-mediasoup') return new BareMediasoupTarget(true);
  if (name === 'bare-mediasoup-libuv') return new BareMediasoupTarget(false);
  if (name === `mediasoup-${LEGACY_MEDIASOUP}`) {
    if (!legacy.ok) throw new Error(legacy.reason);
    return new LegacyMediasoupTarget(legacy);
  }
  if (name === 'janus') return new JanusTarget();
  throw new Error(`unknown target ${name}`);
}

/** A 20 s 1280x720@30 test clip at ~1.5 Mb/s, encoded once and cached. */
function clipFor(codec: BenchCodec): string {
  const dir = join(tmpdir(), 'hoichan-bench-clips');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, codec === 'VP8' ? 'testsrc-720p-vp8-intracap.webm' : 'testsrc-720p-h264-inband.mkv');
  if (existsSync(path)) return path;
  console.log(`encoding ${codec} test clip once (${path})...`);
  const encoder =
    codec === 'VP8'
      ? // max-intra-rate 900 %: the keyframe cap libwebrtc gives libvpx at 30 fps. Uncapped, the
        // clip's first keyframe was 201 KB (170 packets, 6x the others), resent at every loop.
        ['-c:v', 'libvpx', '-b:v', '1500k', '-minrate', '1500k', '-maxrate', '1500k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '60', '-auto-alt-ref', '0', '-max-intra-rate', '900']
      : // repeat-headers: SPS/PPS in-band before every IDR, where mediasoup looks for keyframes.
        ['-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'zerolatency', '-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k', '-g', '60', '-pix_fmt', 'yuv420p', '-x264-params', 'repeat-headers=1'];
  // Light noise keeps the encoder at its target rate (a clean test pattern compresses far below it).
  const source = ['-f', 'lavfi', '-i', 'testsrc=size=1280x720:rate=30', '-vf', 'noise=alls=8:allf=t'];
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...source, '-t', '20', ...encoder, path], { stdio: 'inherit' });
  return path;
}

class Pacer {
  readonly child = fork(fileURLToPath(new URL('./sfu/pacer.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

  ask<T>(command: PacerCommand): Promise<T> {
    return new Promise((resolve) => {
      this.child.once('message', (reply) => resolve(reply as T));
      this.child.send(command);
    });
  }

  /** Starts pacing towards the SFU's ingest; returns where ffmpeg must send instead. */
  start(ingest: Ingest): Promise<Ingest & { recvBufferBytes: number }> {
    return this.ask<{ port: number; rtcpPort: number; recvBufferBytes: number }>({ cmd: 'start', ...ingest, bitsPerSecond: STREAM_BPS * PACING_FACTOR }).then((r) => ({ ip: '127.0.0.1', ...r }));
  }

  close(): void {
    this.child.send({ cmd: 'close' });
  }
}

class Receivers {
  readonly child = fork(fileURLToPath(new URL('./sfu/receivers.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  count = 0;
  readonly ports: number[] = [];

  ask<T>(command: ReceiverCommand): Promise<T> {
    return new Promise((resolve) => {
      this.child.once('message', (reply) => resolve(reply as T));
      this.child.send(command);
    });
  }

  async open(count: number): Promise<number[]> {
    this.count += count;
    const { ports } = await this.ask<{ ports: number[] }>({ cmd: 'open', count });
    this.ports.push(...ports);
    return ports;
  }

  close(): void {
    this.child.send({ cmd: 'close' });
  }
}

interface Step {
  target: string;
  codec: BenchCodec;
  receivers: number;
  cpuPercent: number;
  forwardedPerSec: number;
  perReceiverPps: number;
  lossPercent: number;
  silentReceivers: number;
  /** CPU of the process counting packets: on 2 cores it can limit N before the SFU does. */
  receiverCpuPercent: number;
  /** Kernel drops in the window (/proc/net/udp): at the SFU's ingest socket, and summed over the receivers' sockets. */
  ingestDrops: number;
  receiverDrops: number;
  /** System-wide UDP RcvbufErrors in the window (includes other processes on the machine). */
  rcvbufErrors: number;
  /** Gaps in ffmpeg's own RTP as the pacer saw it, and the pacer's longest queueing delay. */
  senderGaps: number;
  pacerMaxQueueMs: number;
}

async function runLadder(targetName: string, codec: BenchCodec): Promise<{ steps: Step[]; error?: string; outOfBudget?: boolean }> {
  const target = makeTarget(targetName);
  const receivers = counterBinary ? new NativeReceivers(counterBinary) : new Receivers();
  const pacer = new Pacer();
  const steps: Step[] = [];
  let sender: ChildProcess | undefined;
  const started = Date.now();
  try {
    const ingest = await target.start(codec);
    let paced: Ingest = ingest;
    if (PACING_FACTOR > 0) {
      const started = await pacer.start(ingest);
      if (started.recvBufferBytes < 1 << 20) console.log(`  warning: pacer input buffer only ${started.recvBufferBytes} B (net.core.rmem_max)`);
      paced = { ...started, payloadType: ingest.payloadType, ssrc: ingest.ssrc };
    }
    sender = sendRtp(clipFor(codec), paced);
    await sleep(1500);
    for (const n of ladder) {
      if (Date.now() - started > budgetMs) return { steps, outOfBudget: true };
      await target.addReceivers(await receivers.open(n - receivers.count));
      await sleep(warmupMs);
      await receivers.ask({ cmd: 'reset' });
      const pacerBefore = await pacer.ask<PacerReport>({ cmd: 'report' });
      const dropsBefore = udpDropsByPort();
      const rcvbufBefore = udpRcvbufErrors();
      const cpu = new CpuMeter(target.cpuPids());
      const receiverCpu = new CpuMeter([receivers.child.pid!]);
      const t0 = performance.now();
      await sleep(windowMs);
      const report = await receivers.ask<ReceiverReport>({ cmd: 'report' });
      const seconds = (performance.now() - t0) / 1000;
      const dropsAfter = udpDropsByPort();
      const pacerAfter = await pacer.ask<PacerReport>({ cmd: 'report' });
      const step: Step = {
        target: targetName,
        codec,
        receivers: n,
        cpuPercent: cpu.percent(),
        forwardedPerSec: Math.round(report.received / seconds),
        perReceiverPps: report.received / seconds / n,
        lossPercent: report.expected === 0 ? 100 : (100 * (report.expected - report.received)) / report.expected,
        silentReceivers: report.silent,
        receiverCpuPercent: receiverCpu.percent(),
        ingestDrops: sumDrops(dropsAfter, [ingest.port]) - sumDrops(dropsBefore, [ingest.port]),
        receiverDrops: sumDrops(dropsAfter, receivers.ports) - sumDrops(dropsBefore, receivers.ports),
        rcvbufErrors: udpRcvbufErrors() - rcvbufBefore,
        senderGaps: pacerAfter.inputGaps - pacerBefore.inputGaps,
        pacerMaxQueueMs: pacerAfter.maxQueueMs,
      };
      steps.push(step);
      console.log(
        `  ${targetName} ${codec} N=${n}: cpu ${step.cpuPercent.toFixed(0)}% (receivers ${step.receiverCpuPercent.toFixed(0)}%) fwd ${step.forwardedPerSec}/s loss ${step.lossPercent.toFixed(3)}% silent ${report.silent}` +
          ` | kernel drops: ingest ${step.ingestDrops}, receivers ${step.receiverDrops}, RcvbufErrors ${step.rcvbufErrors}; sender gaps ${step.senderGaps}, pacer queue max ${step.pacerMaxQueueMs.toFixed(0)} ms`,
      );
      if (step.lossPercent >= LOSS_LIMIT * 100 || report.silent > 0) break;
      // Loss is counted from the sequence numbers that arrive: a sender (ffmpeg, pacer) starved by
      // other processes sends fewer packets and shows no loss. Stop there rather than count it.
      if (starved(steps)) break;
    }
    return { steps };
  } catch (err) {
    const message = (err as Error).message;
    console.log(`  ${targetName} ${codec}: FAILED: ${message}`);
    return { steps, error: message };
  } finally {
    if (target instanceof HoichanConferenceTarget) layouts[`${targetName}/${codec}`] = target.layout();
    sender?.kill('SIGKILL');
    pacer.close();
    receivers.close();
    await target.stop().catch(() => undefined);
  }
}

/** The last step's receivers got under 85 % of the packet rate the first step's did: the stream itself slowed down. */
function starved(steps: Step[]): boolean {
  const first = steps[0];
  const last = steps.at(-1);
  return first !== undefined && last !== undefined && last !== first && last.perReceiverPps < 0.85 * first.perReceiverPps;
}

const capacityOf = (steps: Step[]) =>
  steps.filter((s, i) => s.lossPercent < LOSS_LIMIT * 100 && s.silentReceivers === 0 && !starved(steps.slice(0, i + 1))).reduce((max, s) => Math.max(max, s.receivers), 0);

/** Why a ladder ended, from its last step's counters. */
function limitOf(steps: Step[], error: string | undefined, outOfBudget: boolean | undefined): string {
  if (error) return `failed: ${error.split('\n')[0]!.slice(0, 160)}`;
  const last = steps.at(-1);
  if (!last) return 'no step';
  if (outOfBudget) return 'time budget';
  if (starved(steps)) return `sender starved: ${last.perReceiverPps.toFixed(0)} of ${steps[0]!.perReceiverPps.toFixed(0)} packets/s per receiver (machine load)`;
  if (last.lossPercent < LOSS_LIMIT * 100 && last.silentReceivers === 0) return 'ladder top';
  if (last.receiverDrops > 0) return 'receiver sockets overflowed (harness limit)';
  // SFU and counter share 2 cores: a saturated counter starves the SFU as well.
  if (last.receiverCpuPercent >= 90) return 'counting process saturated (harness limit)';
  if (last.ingestDrops > 0) return last.cpuPercent >= 90 ? 'SFU CPU-bound: ingest socket overflowed' : 'SFU ingest socket overflowed';
  return 'loss in the SFU';
}

/** The C counter; without a C compiler, the Node one, said in the output (its CPU caps Janus's ladder). */
function nativeCounterOrNothing(): string | undefined {
  try {
    return buildRtpCounter();
  } catch (err) {
    console.log(`cannot build the C packet counter (${(err as Error).message.split('\n')[0]}); counting in Node, which limits the largest N`);
    return undefined;
  }
}

const targetNames = values.targets.split(',');
const counterBinary = values.counter === 'native' ? nativeCounterOrNothing() : undefined;
console.log(`packet counter: ${counterBinary ?? 'node (sfu/receivers.ts)'}`);
// Janus comes from Debian: install it when missing, and say so in the table if that fails.
const janus = targetNames.includes('janus') ? ensureJanus() : ({ ok: true } as const);
// The previous mediasoup pin, for the worker comparison: its cached worker and its npm package.
const legacy = targetNames.includes(`mediasoup-${LEGACY_MEDIASOUP}`) ? ensureLegacyMediasoup() : ({ ok: false, reason: 'not asked for' } as const);
const allSteps: Step[] = [];
/** Where the conference targets' receivers ended up (routers per worker, pipes). */
const layouts: Record<string, string> = {};
const summary: Record<string, unknown>[] = [];
const errors: Record<string, string> = {};
for (const codec of codecs) {
  const capacity: Record<string, number> = {};
  for (const targetName of targetNames) {
    console.log(`\n${targetName} / ${codec}`);
    const notRun = targetName === 'janus' && !janus.ok ? janus.reason : targetName === `mediasoup-${LEGACY_MEDIASOUP}` && !legacy.ok ? legacy.reason : undefined;
    if (notRun) {
      console.log(`  NOT RUN: ${notRun}`);
      errors[`${targetName}/${codec}`] = notRun;
      capacity[targetName] = NaN;
      summary.push({ codec, target: targetName, capacity: 'NOT RUN', limit: notRun });
      continue;
    }
    const { steps, error, outOfBudget } = await runLadder(targetName, codec);
    allSteps.push(...steps);
    if (error) errors[`${targetName}/${codec}`] = error;
    capacity[targetName] = error && steps.length === 0 ? NaN : capacityOf(steps);
    // The top of the ladder was reached without loss: capacity is at least that.
    const topped = steps.length > 0 && steps.at(-1)!.receivers === ladder.at(-1) && capacity[targetName] === ladder.at(-1);
    // SFU CPU per forwarded packet, from the loss-free steps with N >= 50 (small N is dominated by fixed costs).
    const clean = steps.filter((s) => s.receivers >= 50 && s.lossPercent < LOSS_LIMIT * 100);
    const usPerPacket = clean.length ? Math.min(...clean.map((s) => (s.cpuPercent / 100) * 1e6 / s.forwardedPerSec)) : NaN;
    const pps = clean.length ? clean.at(-1)!.perReceiverPps : NaN;
    summary.push({
      codec,
      target: targetName,
      capacity: `${capacity[targetName]}${topped ? '+' : ''}`,
      maxCpuPercent: Math.max(0, ...steps.map((s) => s.cpuPercent)),
      usPerPacket,
      // Extrapolation: N at which the SFU would use one full core at this cost per packet.
      projectedNAtOneCore: Math.round(1e6 / (usPerPacket * pps)),
      limit: limitOf(steps, error, outOfBudget),
    });
  }
  // The ratios' baseline is the one-router Hoichan row, or the one-worker conference row when only the conference rows ran.
  const baseline = targetNames.includes('hoichan') ? 'hoichan' : 'hoichan-1w';
  const ratio = (other: string) => (capacity[baseline]! > 0 && capacity[other]! > 0 ? capacity[baseline]! / capacity[other]! : NaN);
  for (const row of summary.filter((r) => r.codec === codec)) {
    row.hoichanRatio = row.target === baseline ? 1 : ratio(row.target as string);
    const hoichanProjected = summary.find((r) => r.codec === codec && r.target === baseline)?.projectedNAtOneCore as number | undefined;
    row.hoichanProjectedRatio = hoichanProjected === undefined ? NaN : hoichanProjected / (row.projectedNAtOneCore as number);
  }
}

printTable(
  'SFU fan-out: per step (receivers = N PlainTransport/UDP copies of one ~1.5 Mb/s stream; drops = kernel socket-buffer drops in the window)',
  allSteps.map((s) => ({
    target: s.target,
    codec: s.codec,
    N: s.receivers,
    'sfu cpu %': s.cpuPercent,
    'fwd pkt/s': s.forwardedPerSec,
    'pkt/s per rcv': s.perReceiverPps,
    'loss %': s.lossPercent,
    'receiver cpu %': s.receiverCpuPercent,
    'ingest drops': s.ingestDrops,
    'receiver drops': s.receiverDrops,
  })),
);
printTable(
  `SFU fan-out: capacity = largest N under ${LOSS_LIMIT * 100} % loss; usPerPacket = SFU CPU per forwarded packet; projectedNAtOneCore = N at 100 % of one core (extrapolated); ratios = Hoichan (the hoichan row, else hoichan-1w) / this target`,
  summary,
);
for (const codec of codecs) {
  const capacityOfTarget = (name: string) => Number(String(summary.find((r) => r.codec === codec && r.target === name)?.capacity ?? NaN).replace('+', ''));
  const one = capacityOfTarget('hoichan-1w');
  const two = capacityOfTarget('hoichan-2w');
  if (one > 0 && two > 0) console.log(`\n${codec}: Hoichan 2 workers / 1 worker capacity = ${two} / ${one} = ${(two / one).toFixed(2)}`);
}
// The cost of a pipe, and what the per-worker and per-pipe costs project for larger machines.
const pipeCosts: PipeCost[] = [];
const projections: Record<string, unknown>[] = [];
const pipeStreams = Number(values['pipe-streams']);
if (pipeStreams > 0) {
  for (const codec of codecs) {
    console.log(`\npipe cost / ${codec} (${pipeStreams} streams)`);
    try {
      pipeCosts.push(await measurePipeCost(codec, clipFor(codec), { streams: pipeStreams, windowMs: Math.max(windowMs, 6000) }));
    } catch (err) {
      errors[`pipe-cost/${codec}`] = (err as Error).message;
    }
    const cost = pipeCosts.find((c) => c.codec === codec);
    const one = summary.find((r) => r.codec === codec && r.target === 'hoichan-1w');
    const usPerPacket = one?.usPerPacket as number | undefined;
    const perWorker = Number(String(one?.capacity ?? NaN).replace('+', ''));
    if (cost && usPerPacket && perWorker > 0) {
      // A conference on W workers: each worker forwards to its own receivers; the producer's worker also
      // feeds W-1 pipes, each costing it (and the receiving worker) usPerPipedPacket per packet: in
      // receivers' worth, usPerPipedPacket / usPerPacket per pipe.
      const pipeInReceivers = Math.max(0, cost.usPerPipedPacket / usPerPacket);
      for (const cores of [2, 8, 16, 32]) {
        projections.push({ codec, cores, workers: cores, receivers: Math.round(cores * perWorker - (cores - 1) * pipeInReceivers), pipes: cores - 1, 'pipe cost in receivers': pipeInReceivers });
      }
    }
  }
  if (pipeCosts.length) printTable('Pipe cost: added latency through a pipe to a router on another worker; CPU of both workers per piped stream', pipeCosts as unknown as Record<string, unknown>[]);
  if (projections.length) printTable('Projection: one presenter to N receivers on a machine of this per-core speed (capacity per worker from hoichan-1w, minus the pipes)', projections);
}
for (const [key, layout] of Object.entries(layouts)) console.log(`${key} at the end of its ladder: ${layout}`);
if (Object.keys(errors).length > 0) console.log('\nerrors:', errors);
writeResults('sfu-fanout', { ladder, windowSeconds: windowMs / 1000, lossLimit: LOSS_LIMIT, steps: allSteps, summary, errors, layouts, pipeCosts, projections });
process.exit(0);
