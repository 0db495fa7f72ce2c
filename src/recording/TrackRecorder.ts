// One recorded track: a RecordingTap's consumer → RTP over loopback → ffmpeg
// copying it into WebM or Matroska. ffmpeg is always ended with 'q' on its
// stdin (SIGINT as a fallback), so the container is finalised (cues,
// duration) whatever ended the track: a stop, the producer closing, the
// worker dying under the tap.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { closeSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { RecordingTap } from './mediaTap.js';
import { formatFor, ntpToMs, sdpFor, type TrackFormat } from './sdp.js';
import type { TrackSidecar } from './types.js';

/** The fields of mediasoup's RTP packet dump (trace events) the recorder reads. */
interface RtpDump {
  timestamp?: number;
  ssrc?: number;
  payloadSize?: number | bigint;
}

/** How long ffmpeg may take to quit on 'q' (packets flowing) before SIGINT, and to finalise after SIGINT before SIGKILL. */
const QUIT_GRACE_MS = 5000;
const INT_GRACE_MS = 5000;
/** Sender reports kept per track: one per SSRC, simulcast has at most a few. */
const MAX_SENDER_REPORTS = 4;

export interface TrackRecorderOptions {
  recordingId: string;
  dir: string;
  ffmpegPath: string;
  ffprobePath: string;
  log: Logger;
}

export interface TrackRecorderEvents {
  /** The first packet went to ffmpeg: the sidecar has its mapping. */
  started: [TrackSidecar];
  /** ffmpeg exited and the sidecar is final. */
  closed: [TrackSidecar];
}

export class TrackRecorder extends EventEmitter<TrackRecorderEvents> {
  readonly #tap: RecordingTap;
  readonly #options: TrackRecorderOptions;
  readonly #format: TrackFormat;
  readonly #sidecar: TrackSidecar;
  readonly #sidecarPath: string;
  #ffmpeg: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stopping: Promise<TrackSidecar> | undefined;
  #stderrTail = '';
  #timers: NodeJS.Timeout[] = [];
  /** ffmpeg's RTP port (for the BYE that ends it). */
  #port: number | undefined;

  private constructor(tap: RecordingTap, format: TrackFormat, options: TrackRecorderOptions) {
    super();
    this.#tap = tap;
    this.#format = format;
    this.#options = options;
    const codec = tap.consumer.rtpParameters.codecs[0]!;
    const file = `${tap.producerId}.${format.extension}`;
    this.#sidecarPath = join(options.dir, `${tap.producerId}.json`);
    this.#sidecar = {
      version: 1,
      recordingId: options.recordingId,
      producerId: tap.producerId,
      peerId: tap.peerId,
      kind: tap.kind,
      source: tap.source,
      codec: { mimeType: codec.mimeType, clockRate: codec.clockRate, payloadType: codec.payloadType },
      file,
      firstPacket: null,
      senderReports: [],
      producerSsrc: null,
      startedWallMs: Date.now(),
      endedWallMs: null,
      finalisedWallMs: null,
      durationS: null,
      bytes: null,
      state: 'recording',
    };
  }

  /** Undefined when the codec has no container we write without transcoding (the tap is closed). */
  static async start(tap: RecordingTap, options: TrackRecorderOptions): Promise<TrackRecorder | undefined> {
    const format = formatFor(tap.consumer.rtpParameters.codecs[0]?.mimeType ?? '');
    if (!format) {
      options.log.warn({ producerId: tap.producerId, mimeType: tap.consumer.rtpParameters.codecs[0]?.mimeType }, 'codec not recordable without transcoding; track skipped');
      tap.transport.close();
      return undefined;
    }
    const recorder = new TrackRecorder(tap, format, options);
    try {
      await recorder.#start();
    } catch (err) {
      await recorder.stop();
      throw err;
    }
    return recorder;
  }

  get sidecar(): TrackSidecar {
    return this.#sidecar;
  }
  get format(): TrackFormat {
    return this.#format;
  }
  get producerId(): string {
    return this.#tap.producerId;
  }

  async #start(): Promise<void> {
    const { dir, ffmpegPath } = this.#options;
    const tap = this.#tap;
    const port = await freePortPair();
    this.#port = port;
    const sdpPath = join(dir, `${tap.producerId}.sdp`);
    writeFileSync(sdpPath, sdpFor(tap.consumer.rtpParameters, tap.kind, port), { mode: 0o600 });
    const outPath = join(dir, this.#sidecar.file);
    // Created 0600 before ffmpeg opens it: ffmpeg's own files would take the umask (0644).
    closeSync(openSync(outPath, 'w', 0o600));
    this.#writeSidecar();

    const ffmpeg = spawn(
      ffmpegPath,
      [
        '-hide_banner', '-nostats', '-loglevel', process.env.HOICHAN_FFMPEG_LOGLEVEL ?? 'warning',
        '-protocol_whitelist', 'file,udp,rtp',
        // Up to 3 s of media to probe (RTP time, from the first packet, a keyframe:
        // the consumer starts at one; a keyframe lost to a starved host gets the
        // next ones). ffmpeg reads no 'q' while it probes; the BYE ends it.
        // No frame-rate probe: RTP gives packets no duration, and waiting for 20
        // timestamped frames held some streams in the probe for seconds.
        '-analyzeduration', '3000000', '-probesize', '5000000', '-fpsprobesize', '0',
        // Loopback does not reorder: no jitter queue holding packets back.
        '-reorder_queue_size', '0',
        // A starved ffmpeg falls behind in bursts: 4 MiB of socket buffer (the
        // kernel's default 208 KiB is 1 s of a camera) so the kernel does not drop
        // what it will read a moment later. Capped by net.core.rmem_max.
        '-buffer_size', String(4 * 1024 * 1024),
        '-i', sdpPath,
        '-map', '0', '-c', 'copy',
        // File time = (RTP timestamp − the first packet's) / clock rate: the sidecar's mapping holds.
        '-copyts',
        '-f', this.#format.muxer, '-y', outPath,
      ],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    this.#ffmpeg = ffmpeg;
    ffmpeg.stderr!.setEncoding('utf8');
    ffmpeg.stderr!.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-2000);
    });
    ffmpeg.stdin!.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      ffmpeg.once('exit', (code, signal) => {
        if (!this.#stopping) {
          // Nobody asked: ffmpeg died. Stop the tap; the file is whatever it wrote.
          this.#options.log.error({ producerId: tap.producerId, code, signal, stderr: this.#stderrTail }, 'ffmpeg exited during recording');
          this.#sidecar.state = 'failed';
          void this.stop();
        }
        resolve();
      });
      ffmpeg.once('error', (err) => {
        this.#options.log.error({ producerId: tap.producerId, err: err.message }, 'cannot run ffmpeg');
        this.#sidecar.state = 'failed';
        resolve();
      });
    });
    // A loaded host takes seconds to start several ffmpegs at once.
    await waitForUdpListener(port, 20_000, () => ffmpeg.exitCode !== null || this.#sidecar.state === 'failed');

    const { consumer, transport, producer } = tap;
    // The simulcast consumer rewrites RTP timestamps (an offset per layer), so the
    // file's timestamps and the sender's reports are on different RTP clocks: the
    // first packet is matched to the producer's keyframe packet it forwarded (by
    // payload size, among the last ones received) to pair the two.
    const keyframes: Array<{ ssrc: number; timestamp: number; payloadSize: number }> = [];
    consumer.on('trace', (trace) => {
      if (trace.type !== 'rtp' || this.#sidecar.firstPacket) return;
      const packet = (trace.info as { rtpPacket?: RtpDump }).rtpPacket;
      if (!packet || typeof packet.timestamp !== 'number') return;
      const single = (producer.rtpParameters.encodings ?? []).length <= 1 && consumer.type === 'simple';
      const source = single ? undefined : [...keyframes].reverse().find((k) => k.payloadSize === Number(packet.payloadSize));
      this.#sidecar.firstPacket = {
        rtpTimestamp: packet.timestamp,
        wallMs: Date.now(),
        ssrc: packet.ssrc ?? 0,
        producerRtpTimestamp: single ? packet.timestamp : (source?.timestamp ?? null),
      };
      this.#sidecar.producerSsrc = single ? (producer.rtpParameters.encodings?.[0]?.ssrc ?? null) : (source?.ssrc ?? null);
      this.#writeSidecar();
      this.emit('started', this.#sidecar);
      void consumer.enableTraceEvent([]).catch(() => undefined);
    });
    producer.on('trace', (trace) => {
      if (this.#stopping) return;
      if (trace.type === 'keyframe') {
        const packet = (trace.info as { rtpPacket?: RtpDump }).rtpPacket;
        if (packet && typeof packet.timestamp === 'number' && typeof packet.ssrc === 'number') {
          keyframes.push({ ssrc: packet.ssrc, timestamp: packet.timestamp, payloadSize: Number(packet.payloadSize) });
          if (keyframes.length > 16) keyframes.shift();
        }
        return;
      }
      if (trace.type !== 'sr') return;
      const sr = trace.info as { ssrc?: number; ntpSec?: number; ntpFrac?: number; rtpTs?: number };
      if (typeof sr.ssrc !== 'number' || typeof sr.ntpSec !== 'number' || typeof sr.ntpFrac !== 'number' || typeof sr.rtpTs !== 'number') return;
      const reports = this.#sidecar.senderReports;
      if (reports.some((r) => r.ssrc === sr.ssrc) || reports.length >= MAX_SENDER_REPORTS) return;
      reports.push({ ssrc: sr.ssrc, rtpTimestamp: sr.rtpTs, ntpMs: ntpToMs(sr.ntpSec, sr.ntpFrac), receivedWallMs: Date.now() });
      this.#writeSidecar();
    });
    // A paused producer sends nothing; on resume the decoder needs a keyframe to go on.
    consumer.on('producerresume', () => void this.#keyFrame());
    consumer.observer.on('resume', () => void this.#keyFrame());
    consumer.on('producerclose', () => void this.stop());
    consumer.on('transportclose', () => void this.stop());
    transport.observer.once('close', () => void this.stop());

    await transport.connect({ ip: '127.0.0.1', port });
    await consumer.enableTraceEvent(['rtp']);
    await producer.enableTraceEvent(['sr', 'keyframe']).catch(() => undefined);
    await consumer.resume();
    await this.#keyFrame();
    // Again shortly: the first request can race the sender's encoder start, and a
    // keyframe lost before ffmpeg read it (a starved host) would hold its probe.
    for (const ms of [1000, 3000]) this.#timers.push(setTimeout(() => void this.#keyFrame(), ms));
  }

  async #keyFrame(): Promise<void> {
    if (this.#tap.kind !== 'video' || this.#tap.consumer.closed) return;
    await this.#tap.consumer.requestKeyFrame().catch(() => undefined);
  }

  /** Closes the tap, has ffmpeg finalise the file, writes the final sidecar. Idempotent. */
  stop(): Promise<TrackSidecar> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<TrackSidecar> {
    for (const timer of this.#timers) clearTimeout(timer);
    const { producer, transport } = this.#tap;
    if (!producer.closed) await producer.enableTraceEvent([]).catch(() => undefined);
    this.#sidecar.endedWallMs = Date.now();
    const ffmpeg = this.#ffmpeg;
    if (ffmpeg && ffmpeg.exitCode === null && ffmpeg.signalCode === null) {
      // 'q' is read by ffmpeg's main loop between packets only: with the router
      // gone (worker death, conference closed) ffmpeg sits in its RTP read. An
      // RTCP BYE is end of stream to ffmpeg's RTP demuxer whether or not packets
      // still flow: it writes the trailer and exits. (SIGINT is no help there:
      // one does not interrupt the read, a second also aborts the trailer.)
      ffmpeg.stdin?.end('q');
      if (this.#port !== undefined) void sendRtcpBye(this.#port, this.#sidecar.firstPacket?.ssrc ?? 0);
      if (!(await settles(this.#exited, QUIT_GRACE_MS))) {
        this.#options.log.warn({ producerId: this.#tap.producerId, stderr: this.#stderrTail }, "ffmpeg did not quit on 'q' and BYE; sending SIGINT");
        ffmpeg.kill('SIGINT');
        if (!(await settles(this.#exited, INT_GRACE_MS))) {
          this.#options.log.warn({ producerId: this.#tap.producerId }, 'ffmpeg did not exit on SIGINT; killing it (the file is cut)');
          ffmpeg.kill('SIGKILL');
        }
      }
    }
    await this.#exited;
    transport.close();
    const sidecar = this.#sidecar;
    sidecar.finalisedWallMs = Date.now();
    try {
      sidecar.bytes = statSync(join(this.#options.dir, sidecar.file)).size;
    } catch {
      sidecar.bytes = 0;
    }
    if (sidecar.state === 'recording') {
      // What ffmpeg left is checked, not assumed: a file it could not finish
      // does not parse; one stopped while it still probed has no media.
      const probed = sidecar.firstPacket && (sidecar.bytes ?? 0) > 0 ? await probeDuration(this.#options.ffprobePath, join(this.#options.dir, sidecar.file)) : 0;
      sidecar.durationS = probed ?? null;
      sidecar.state = probed === undefined ? 'failed' : probed > 0 ? 'done' : 'empty';
    }
    if (sidecar.state !== 'done') this.#options.log.warn({ producerId: this.#tap.producerId, state: sidecar.state, stderr: this.#stderrTail }, 'track not finalised as done');
    this.#writeSidecar();
    this.emit('closed', sidecar);
    return sidecar;
  }

  /** Written whole and renamed into place: a reader never sees half a sidecar. */
  #writeSidecar(): void {
    const tmp = `${this.#sidecarPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.#sidecar, null, 1), { mode: 0o600 });
    renameSync(tmp, this.#sidecarPath);
  }
}

/**
 * RTCP BYE (RFC 3550 6.6) naming the SSRC twice: ffmpeg's RTP demuxer ignores
 * anything shorter than 12 bytes. Sent three times, 100 ms apart.
 */
async function sendRtcpBye(port: number, ssrc: number): Promise<void> {
  const bye = Buffer.alloc(12);
  bye.writeUInt8(0x82, 0); // V=2, two SSRCs
  bye.writeUInt8(203, 1); // BYE
  bye.writeUInt16BE(2, 2); // length in 32-bit words minus one
  bye.writeUInt32BE(ssrc >>> 0, 4);
  bye.writeUInt32BE(ssrc >>> 0, 8);
  const socket = createSocket('udp4');
  try {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => socket.send(bye, port, '127.0.0.1', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    socket.close();
  }
}

/** The file's duration in seconds (0: no media in it), or undefined when it does not parse. */
function probeDuration(ffprobePath: string, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile(ffprobePath, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', path], { timeout: 20_000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      const duration = Number(stdout.trim());
      resolve(Number.isFinite(duration) ? duration : 0);
    });
  });
}

function settles(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * An even loopback UDP port whose successor is free too (ffmpeg binds port + 1
 * for RTCP). Probed by binding both and letting go; ffmpeg binds them a moment
 * later, and a lost race shows as ffmpeg failing to start, which is reported.
 */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await bindUdp(0);
    const port = first.port % 2 === 0 ? first.port : first.port + 1;
    await first.close();
    if (port + 1 > 65535) continue;
    try {
      const a = await bindUdp(port);
      const b = await bindUdp(port + 1).catch(async (err: unknown) => {
        await a.close();
        throw err;
      });
      await a.close();
      await b.close();
      return port;
    } catch {
      // taken meanwhile: try another
    }
  }
  throw new Error('no free UDP port pair on loopback for ffmpeg');
}

function bindUdp(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve({ port: socket.address().port, close: () => new Promise((done) => socket.close(() => done())) });
    });
  });
}

/** Waits until something listens on the UDP port (/proc/net/udp), so no packet is sent before ffmpeg reads. */
async function waitForUdpListener(port: number, timeoutMs: number, failed: () => boolean): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (failed()) throw new Error('ffmpeg exited before it listened');
    for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
      let text = '';
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      // Each row's second field is the local address, "0100007F:1F90".
      if (text.split('\n').some((line) => line.trim().split(/\s+/)[1]?.split(':').pop() === hex)) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`ffmpeg did not listen on UDP ${port} within ${timeoutMs} ms`);
}
