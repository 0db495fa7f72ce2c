// SFU fan-out bench: ffmpeg sends one ~1.5 Mb/s 720p30 stream (VP8, then H.264
// baseline with packetization-mode 1) over RTP into the SFU, which forwards a
// copy to N PlainTransport/UDP receivers on loopback. Per N: SFU CPU, packets
// forwarded per second, loss at the receivers (from RTP sequence gaps), and the
// largest N under 0.5 % loss. The same stream and ladder run against Hoichan,
// a bare mediasoup script and Janus in the same run.
//   node dist/scripts/bench/sfu-fanout.js [--codecs VP8,H264] [--targets hoichan,bare-mediasoup,janus]
//        [--ladder 10,50,100,150,200,300,400,800,1200,1600] [--window 4] [--budget 100]
// The stream is encoded once to a file and sent with -c copy, so the sender's CPU stays near zero.
// Writes bench-results/sfu-fanout.json. Loopback only; every step is bounded in time.

import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import './support/quiet.js';
import { CpuMeter, printTable, sleep, writeResults } from './support/common.js';
import type { ReceiverCommand, ReceiverReport } from './sfu/receivers.js';
import { BareMediasoupTarget, HoichanTarget, JanusTarget, PAYLOAD_TYPE, SENDER_SSRC, type BenchCodec, type Ingest, type SfuTarget } from './sfu/targets.js';

const { values } = parseArgs({
  options: {
    codecs: { type: 'string', default: 'VP8,H264' },
    targets: { type: 'string', default: 'hoichan,bare-mediasoup,janus' },
    ladder: { type: 'string', default: '10,50,100,150,200,300,400,800,1200,1600' },
    window: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    /** Seconds one target may spend on its ladder for one codec. */
    budget: { type: 'string', default: '100' },
  },
});
const codecs = values.codecs.split(',') as BenchCodec[];
const ladder = values.ladder.split(',').map(Number);
const windowMs = Number(values.window) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const budgetMs = Number(values.budget) * 1000;
const LOSS_LIMIT = 0.005;

function makeTarget(name: string): SfuTarget {
  if (name === 'hoichan') return new HoichanTarget();
  if (name === 'bare-mediasoup') return new BareMediasoupTarget();
  if (name === 'janus') return new JanusTarget();
  throw new Error(`unknown target ${name}`);
}

/** A 20 s 1280x720@30 test clip at ~1.5 Mb/s, encoded once and cached. */
function clipFor(codec: BenchCodec): string {
  const dir = join(tmpdir(), 'hoichan-bench-clips');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, codec === 'VP8' ? 'testsrc-720p-vp8.webm' : 'testsrc-720p-h264-inband.mkv');
  if (existsSync(path)) return path;
  console.log(`encoding ${codec} test clip once (${path})...`);
  const encoder =
    codec === 'VP8'
      ? ['-c:v', 'libvpx', '-b:v', '1500k', '-minrate', '1500k', '-maxrate', '1500k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '60', '-auto-alt-ref', '0']
      : // repeat-headers: SPS/PPS in-band before every IDR, where mediasoup looks for keyframes.
        ['-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'zerolatency', '-b:v', '1500k', '-maxrate', '1500k', '-bufsize', '750k', '-g', '60', '-pix_fmt', 'yuv420p', '-x264-params', 'repeat-headers=1'];
  // Light noise keeps the encoder at its target rate (a clean test pattern compresses far below it).
  const source = ['-f', 'lavfi', '-i', 'testsrc=size=1280x720:rate=30', '-vf', 'noise=alls=8:allf=t'];
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...source, '-t', '20', ...encoder, path], { stdio: 'inherit' });
  return path;
}

function sendRtp(clip: string, { ip, port, rtcpPort }: Ingest): ChildProcess {
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-an', '-c:v', 'copy', '-f', 'rtp', '-payload_type', String(PAYLOAD_TYPE), '-ssrc', String(SENDER_SSRC), `rtp://${ip}:${port}?rtcpport=${rtcpPort}&pkt_size=1200`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

class Receivers {
  readonly child = fork(fileURLToPath(new URL('./sfu/receivers.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  count = 0;

  ask<T>(command: ReceiverCommand): Promise<T> {
    return new Promise((resolve) => {
      this.child.once('message', (reply) => resolve(reply as T));
      this.child.send(command);
    });
  }

  async open(count: number): Promise<number[]> {
    this.count += count;
    return (await this.ask<{ ports: number[] }>({ cmd: 'open', count })).ports;
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
}

async function runLadder(targetName: string, codec: BenchCodec): Promise<{ steps: Step[]; error?: string }> {
  const target = makeTarget(targetName);
  const receivers = new Receivers();
  const steps: Step[] = [];
  let sender: ChildProcess | undefined;
  const started = Date.now();
  try {
    const ingest = await target.start(codec);
    sender = sendRtp(clipFor(codec), ingest);
    await sleep(1500);
    for (const n of ladder) {
      if (Date.now() - started > budgetMs) break;
      await target.addReceivers(await receivers.open(n - receivers.count));
      await sleep(warmupMs);
      await receivers.ask({ cmd: 'reset' });
      const cpu = new CpuMeter(target.cpuPids());
      const receiverCpu = new CpuMeter([receivers.child.pid!]);
      const t0 = performance.now();
      await sleep(windowMs);
      const report = await receivers.ask<ReceiverReport>({ cmd: 'report' });
      const seconds = (performance.now() - t0) / 1000;
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
      };
      steps.push(step);
      console.log(`  ${targetName} ${codec} N=${n}: cpu ${step.cpuPercent.toFixed(0)}% (receivers ${step.receiverCpuPercent.toFixed(0)}%) fwd ${step.forwardedPerSec}/s loss ${step.lossPercent.toFixed(3)}% silent ${report.silent}`);
      if (step.lossPercent >= LOSS_LIMIT * 100 || report.silent > 0) break;
    }
    return { steps };
  } catch (err) {
    const message = (err as Error).message;
    console.log(`  ${targetName} ${codec}: FAILED: ${message}`);
    return { steps, error: message };
  } finally {
    sender?.kill('SIGKILL');
    receivers.close();
    await target.stop().catch(() => undefined);
  }
}

const capacityOf = (steps: Step[]) => steps.filter((s) => s.lossPercent < LOSS_LIMIT * 100 && s.silentReceivers === 0).reduce((max, s) => Math.max(max, s.receivers), 0);

const allSteps: Step[] = [];
const summary: Record<string, unknown>[] = [];
const errors: Record<string, string> = {};
for (const codec of codecs) {
  const capacity: Record<string, number> = {};
  for (const targetName of values.targets.split(',')) {
    console.log(`\n${targetName} / ${codec}`);
    const { steps, error } = await runLadder(targetName, codec);
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
    });
  }
  const ratio = (other: string) => (capacity.hoichan! > 0 && capacity[other]! > 0 ? capacity.hoichan! / capacity[other]! : NaN);
  for (const row of summary.filter((r) => r.codec === codec)) {
    row.hoichanRatio = row.target === 'hoichan' ? 1 : ratio(row.target as string);
    const hoichanProjected = summary.find((r) => r.codec === codec && r.target === 'hoichan')?.projectedNAtOneCore as number | undefined;
    row.hoichanProjectedRatio = hoichanProjected === undefined ? NaN : hoichanProjected / (row.projectedNAtOneCore as number);
  }
}

printTable('SFU fan-out: per step (receivers = N PlainTransport/UDP copies of one ~1.5 Mb/s stream)', allSteps.map(({ target, codec, receivers, cpuPercent, forwardedPerSec, perReceiverPps, lossPercent, receiverCpuPercent }) => ({ target, codec, N: receivers, 'sfu cpu %': cpuPercent, 'fwd pkt/s': forwardedPerSec, 'pkt/s per rcv': perReceiverPps, 'loss %': lossPercent, 'receiver cpu %': receiverCpuPercent })));
printTable(
  `SFU fan-out: capacity = largest N under ${LOSS_LIMIT * 100} % loss; usPerPacket = SFU CPU per forwarded packet; projectedNAtOneCore = N at 100 % of one core (extrapolated); ratios = Hoichan / this target`,
  summary,
);
if (Object.keys(errors).length > 0) console.log('\nerrors:', errors);
writeResults('sfu-fanout', { ladder, windowSeconds: windowMs / 1000, lossLimit: LOSS_LIMIT, steps: allSteps, summary, errors });
process.exit(0);
