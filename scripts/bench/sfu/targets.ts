// The SFUs the fan-out bench drives with the same RTP stream: Hoichan (a real
// Hub: worker pool, conference router, telemetry polling), a bare mediasoup
// script (the pinned version, io_uring on and off), the previous pin
// (mediasoup 3.12.16) and Janus (VideoRoom remote publisher + RTP forwarders).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { types } from 'mediasoup';
import { INGEST_RECV_BUFFER_BYTES } from '../../../src/media/addresses.js';
import { JanusServer, JanusSession, type JanusReply } from '../support/janus.js';

export type BenchCodec = 'VP8' | 'H264';

export const PAYLOAD_TYPE = 96;
/** Janus derives the remote publisher's m-line from the SSRC: (100 + mindex) * 10 (+ substream). */
export const SENDER_SSRC = 1000;

/** Where the sender must send its RTP and RTCP. */
export interface Ingest {
  ip: string;
  port: number;
  rtcpPort: number;
  /** What the sender must use when the SFU chose it (a Hoichan ingest); default PAYLOAD_TYPE and SENDER_SSRC. */
  payloadType?: number;
  ssrc?: number;
}

/** ffmpeg sending a clip (-c copy, at its own pace) as RTP to an SFU's ingest. */
export function sendRtp(clip: string, { ip, port, rtcpPort, payloadType = PAYLOAD_TYPE, ssrc = SENDER_SSRC }: Ingest): ChildProcess {
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-an', '-c:v', 'copy', '-f', 'rtp', '-payload_type', String(payloadType), '-ssrc', String(ssrc), `rtp://${ip}:${port}?rtcpport=${rtcpPort}&pkt_size=1200`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

export interface SfuTarget {
  readonly name: string;
  start(codec: BenchCodec): Promise<Ingest>;
  /** Adds one forwarded copy of the stream per receiver port. */
  addReceivers(ports: number[]): Promise<void>;
  /** Processes whose CPU is the SFU's forwarding cost. */
  cpuPids(): number[];
  stop(): Promise<void>;
}

export function producerRtpParameters(codec: BenchCodec): types.RtpParameters {
  const codecParameters: types.RtpCodecParameters =
    codec === 'VP8'
      ? { mimeType: 'video/VP8', payloadType: PAYLOAD_TYPE, clockRate: 90000 }
      : {
          mimeType: 'video/H264',
          payloadType: PAYLOAD_TYPE,
          clockRate: 90000,
          parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
        };
  return { codecs: [codecParameters], encodings: [{ ssrc: SENDER_SSRC }], rtcp: { cname: 'bench', reducedSize: true } };
}

/** Fan-out on one mediasoup router: a comedia PlainTransport producer, one PlainTransport consumer per receiver. */
class RouterFanout {
  #producer: types.Producer | undefined;
  readonly #transports: types.PlainTransport[] = [];

  /** legacyListen: mediasoup 3.12's listenIp form (no listen infos, no buffer sizes), for the 3.12.16 comparison. */
  constructor(
    readonly router: types.Router,
    readonly legacyListen = false,
  ) {}

  async ingest(codec: BenchCodec): Promise<Ingest> {
    // No rtcp-mux: ffmpeg sends RTCP from a second local port, and a muxed comedia
    // transport would latch onto whichever arrived first and drop the other.
    const transport = await this.router.createPlainTransport({
      ...(this.legacyListen
        ? { listenIp: { ip: '127.0.0.1' } }
        : { listenInfo: { ...BENCH_LISTEN, recvBufferSize: INGEST_RECV_BUFFER_BYTES }, rtcpListenInfo: BENCH_LISTEN }),
      rtcpMux: false,
      comedia: true,
    });
    this.#transports.push(transport);
    this.#producer = await transport.produce({ kind: 'video', rtpParameters: producerRtpParameters(codec) });
    return { ip: '127.0.0.1', port: transport.tuple.localPort, rtcpPort: transport.rtcpTuple!.localPort };
  }

  async addReceivers(ports: number[]): Promise<void> {
    const producer = this.#producer!;
    // Bounded concurrency: hundreds of requests at once would only queue in the worker channel.
    for (let i = 0; i < ports.length; i += 25) {
      await Promise.all(
        ports.slice(i, i + 25).map(async (port) => {
          const transport = await this.router.createPlainTransport({
            ...(this.legacyListen ? { listenIp: { ip: '127.0.0.1' } } : { listenInfo: BENCH_LISTEN }),
            rtcpMux: true,
            comedia: false,
          });
          await transport.connect({ ip: '127.0.0.1', port });
          await transport.consume({ producerId: producer.id, rtpCapabilities: this.router.rtpCapabilities, paused: false });
          this.#transports.push(transport);
        }),
      );
    }
  }

  close(): void {
    for (const t of this.#transports) t.close();
  }
}

const BENCH_RTC_PORTS = { rtcMinPort: 20000, rtcMaxPort: 29999 };
/** The bench's plain transports, Hoichan's and the bare script's alike: loopback, ports from BENCH_RTC_PORTS. */
const BENCH_LISTEN: types.TransportListenInfo = {
  protocol: 'udp',
  ip: '127.0.0.1',
  portRange: { min: BENCH_RTC_PORTS.rtcMinPort, max: BENCH_RTC_PORTS.rtcMaxPort },
};

export class HoichanTarget implements SfuTarget {
  readonly name = 'hoichan';
  #hub: import('../../../src/hub/Hub.js').Hub | undefined;
  #fanout: RouterFanout | undefined;

  async start(codec: BenchCodec): Promise<Ingest> {
    const { loadConfig } = await import('../../../src/config/load.js');
    const { Hub } = await import('../../../src/hub/Hub.js');
    const config = loadConfig({
      env: {},
      overrides: {
        http: { listenIp: '127.0.0.1', port: 0 },
        // One worker: a single stream's fan-out lives on one router, hence one worker, as in the bare script.
        media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: 31900, ...BENCH_RTC_PORTS, workerLogLevel: 'error' },
        auth: { jwtSecret: 'bench-secret-0123456789abcdef-0123456789abcdefghi', demo: false },
      },
    });
    this.#hub = await Hub.start(config);
    const conference = await this.#hub.conferences.getOrCreate('bench-fanout');
    this.#fanout = new RouterFanout(conference.router);
    return this.#fanout.ingest(codec);
  }

  addReceivers(ports: number[]): Promise<void> {
    return this.#fanout!.addReceivers(ports);
  }

  cpuPids(): number[] {
    return this.#hub!.pool.workers.map((w) => w.worker.pid);
  }

  async stop(): Promise<void> {
    this.#fanout?.close();
    await this.#hub?.close();
  }
}

/**
 * Hoichan as a conference spreads it: the stream comes in through a real
 * ingest (src/media/IngestPoint.ts), and each receiver is a peer of the
 * conference placed by its policy (the router with room on the least-loaded
 * worker; a new router on the other worker once the first holds
 * media.maxConsumersPerRouter consumers), consuming on a PlainTransport of
 * its router, to which the conference pipes the stream on first use.
 */
export class HoichanConferenceTarget implements SfuTarget {
  readonly name: string;
  #hub: import('../../../src/hub/Hub.js').Hub | undefined;
  #conference: import('../../../src/media/Conference.js').Conference | undefined;
  #producerId = '';
  #peers = 0;
  readonly #transports: types.PlainTransport[] = [];

  constructor(readonly workers: number) {
    this.name = `hoichan-${workers}w`;
  }

  async start(codec: BenchCodec): Promise<Ingest> {
    const { loadConfig } = await import('../../../src/config/load.js');
    const { Hub } = await import('../../../src/hub/Hub.js');
    const config = loadConfig({
      env: {},
      overrides: {
        http: { listenIp: '127.0.0.1', port: 0 },
        // Every receiver is a peer: the ladder's top needs room for 1600 of them. Own WebRTC ports: the
        // previous target's workers may still be exiting.
        media: { numWorkers: this.workers, listenIp: '127.0.0.1', webRtcServerPort: 31900 + 10 * this.workers, ...BENCH_RTC_PORTS, workerLogLevel: 'error', ingestRequireSrtp: false, maxPeersPerConference: 5000, ingestIdleTimeoutMs: 60_000 },
        auth: { jwtSecret: 'bench-secret-0123456789abcdef-0123456789abcdefghi', demo: false },
      },
    });
    this.#hub = await Hub.start(config);
    this.#conference = await this.#hub.conferences.getOrCreate('bench-fanout');
    const info = await this.#conference.ingests.open({ deviceId: 'bench-camera', displayName: 'bench', source: 'device-video', codec, srtp: false }, 'bench');
    this.#producerId = info.producerId;
    return { ip: info.ip, port: info.port, rtcpPort: info.rtcpPort, payloadType: info.payloadType, ssrc: info.ssrc };
  }

  async addReceivers(ports: number[]): Promise<void> {
    const { Peer } = await import('../../../src/media/Peer.js');
    const conference = this.#conference!;
    for (let i = 0; i < ports.length; i += 25) {
      await Promise.all(
        ports.slice(i, i + 25).map(async (port) => {
          const n = ++this.#peers;
          const peer = new Peer(`bench-${n}`, `bench-${n}`, `receiver ${n}`, 'specialist', () => undefined);
          await conference.addPeer(peer);
          const router = await conference.routerConsuming(peer, this.#producerId);
          const transport = await router.createPlainTransport({ listenInfo: BENCH_LISTEN, rtcpMux: true, comedia: false });
          this.#transports.push(transport);
          await transport.connect({ ip: '127.0.0.1', port });
          const consumer = await transport.consume({ producerId: this.#producerId, rtpCapabilities: router.rtpCapabilities, paused: false });
          peer.consumers.set(consumer.id, consumer);
        }),
      );
    }
  }

  cpuPids(): number[] {
    return this.#hub!.pool.workers.map((w) => w.worker.pid);
  }

  /** Routers and pipes the conference ended with, for the summary. */
  layout(): string {
    const c = this.#conference;
    return c ? c.routers.map((r) => `worker ${r.workerSlot}: ${r.consumers} consumers, ${r.pipes} pipes in`).join('; ') : '';
  }

  async stop(): Promise<void> {
    for (const t of this.#transports) t.close();
    await this.#hub?.close();
  }
}

export const BARE_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
  { kind: 'video', mimeType: 'video/H264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 } },
];

/**
 * The installed mediasoup (3.19.x) with one worker and one router; `ioUring:
 * false` is the same worker with io_uring disabled (libuv sendmsg), for the
 * worker comparison.
 */
export class BareMediasoupTarget implements SfuTarget {
  readonly name: string;
  #worker: types.Worker | undefined;
  #fanout: RouterFanout | undefined;

  constructor(readonly ioUring = true) {
    this.name = ioUring ? 'bare-mediasoup' : 'bare-mediasoup-libuv';
  }

  async start(codec: BenchCodec): Promise<Ingest> {
    const { loadMediasoup } = await import('../../../src/media/workerBinary.js'); // only to find the worker binary
    const mediasoup = await loadMediasoup();
    this.#worker = await mediasoup.createWorker({ logLevel: 'error', disableLiburing: !this.ioUring });
    const usesIoUring = (await this.#worker.dump()).liburing !== undefined;
    if (usesIoUring !== this.ioUring) console.log(`  note: ${this.name} worker io_uring ${usesIoUring ? 'on' : 'off'} (kernel or seccomp decides)`);
    const router = await this.#worker.createRouter({ mediaCodecs: BARE_CODECS });
    this.#fanout = new RouterFanout(router);
    return this.#fanout.ingest(codec);
  }

  addReceivers(ports: number[]): Promise<void> {
    return this.#fanout!.addReceivers(ports);
  }

  cpuPids(): number[] {
    return [this.#worker!.pid];
  }

  async stop(): Promise<void> {
    this.#fanout?.close();
    this.#worker?.close();
  }
}

/** The previous pin, for the back-to-back worker comparison: its npm package and its cached worker. */
export const LEGACY_MEDIASOUP = '3.12.16';

/**
 * mediasoup 3.12.16 (JSON channel, libuv sending) in this same process: its
 * npm package installed once under the cache (npm registry, postinstall kept
 * away from the network by MEDIASOUP_WORKER_BIN), its worker the binary
 * scripts/build-worker.sh cached when 3.12.16 was the pin. Never built here:
 * the meson patch now targets 3.19, so a missing binary is reported, not
 * rebuilt.
 */
export function ensureLegacyMediasoup(): { ok: true; moduleDir: string; workerBin: string } | { ok: false; reason: string } {
  const cacheDir = process.env.HOICHAN_CACHE_DIR ?? join(homedir(), '.cache', 'hoichan');
  const workerBin = join(cacheDir, 'mediasoup-worker', LEGACY_MEDIASOUP, 'mediasoup-worker');
  if (!existsSync(workerBin)) {
    return { ok: false, reason: `no mediasoup ${LEGACY_MEDIASOUP} worker at ${workerBin} (build it from a checkout of the commit that pinned ${LEGACY_MEDIASOUP})` };
  }
  const prefix = join(cacheDir, 'bench', `mediasoup-${LEGACY_MEDIASOUP}`);
  const moduleDir = join(prefix, 'node_modules', 'mediasoup');
  if (!existsSync(join(moduleDir, 'package.json'))) {
    console.log(`installing mediasoup ${LEGACY_MEDIASOUP}'s npm package once under ${prefix}...`);
    mkdirSync(prefix, { recursive: true });
    const npm = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `mediasoup@${LEGACY_MEDIASOUP}`], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, MEDIASOUP_WORKER_BIN: workerBin },
    });
    if (npm.status !== 0 || !existsSync(join(moduleDir, 'package.json'))) {
      return { ok: false, reason: `npm install mediasoup@${LEGACY_MEDIASOUP} failed: ${`${npm.error?.message ?? ''}${npm.stderr ?? ''}`.trim().split('\n').slice(-2).join(' ').slice(0, 200)}` };
    }
  }
  return { ok: true, moduleDir, workerBin };
}

export class LegacyMediasoupTarget implements SfuTarget {
  readonly name = `mediasoup-${LEGACY_MEDIASOUP}`;
  #worker: types.Worker | undefined;
  #fanout: RouterFanout | undefined;

  constructor(readonly legacy: { moduleDir: string; workerBin: string }) {}

  async start(codec: BenchCodec): Promise<Ingest> {
    // 3.12 reads MEDIASOUP_WORKER_BIN when its module loads; the 3.19 module
    // already loaded keeps the binary it read then.
    const saved = process.env.MEDIASOUP_WORKER_BIN;
    process.env.MEDIASOUP_WORKER_BIN = this.legacy.workerBin;
    let legacy: { createWorker(settings: Record<string, unknown>): Promise<types.Worker> };
    try {
      legacy = createRequire(join(this.legacy.moduleDir, 'package.json'))('./node/lib/index.js') as typeof legacy;
    } finally {
      if (saved === undefined) delete process.env.MEDIASOUP_WORKER_BIN;
      else process.env.MEDIASOUP_WORKER_BIN = saved;
    }
    // 3.12's plain transports take their ports from the worker's range.
    this.#worker = await legacy.createWorker({ logLevel: 'error', ...BENCH_RTC_PORTS });
    const router = await this.#worker.createRouter({ mediaCodecs: BARE_CODECS });
    this.#fanout = new RouterFanout(router, true);
    return this.#fanout.ingest(codec);
  }

  addReceivers(ports: number[]): Promise<void> {
    return this.#fanout!.addReceivers(ports);
  }

  cpuPids(): number[] {
    return [this.#worker!.pid];
  }

  async stop(): Promise<void> {
    this.#fanout?.close();
    this.#worker?.close();
  }
}

export { ensureJanus } from '../support/janus.js';

/** Janus 1.1 VideoRoom: a remote publisher takes plain RTP; rtp_forward copies it to each receiver. */
export class JanusTarget implements SfuTarget {
  readonly name = 'janus';
  #server: JanusServer | undefined;
  #session: JanusSession | undefined;
  #handle = 0;
  #room = 0;
  #publisher = 0;

  get log(): string {
    return this.#server?.log ?? '';
  }

  async start(codec: BenchCodec): Promise<Ingest> {
    this.#server = await JanusServer.start({ httpPort: 18000 + (process.pid % 1000), rtpPortRange: '31000-31999' });
    this.#session = await JanusSession.create(this.#server.base);
    this.#handle = await this.#session.attach();
    this.#room = 4000 + (process.pid % 1000);
    await this.#request({ request: 'create', room: this.#room, publishers: 4, videocodec: codec === 'VP8' ? 'vp8' : 'h264', h264_profile: '42e01f' });
    const remote = await this.#request({
      request: 'add_remote_publisher',
      room: this.#room,
      id: 777,
      display: 'bench',
      iface: '127.0.0.1',
      streams: [{ type: 'video', mindex: 0, mid: '0', codec: codec === 'VP8' ? 'vp8' : 'h264', ...(codec === 'H264' ? { 'h264-profile': '42e01f' } : {}) }],
    });
    this.#publisher = remote.id;
    return { ip: remote.ip === '0.0.0.0' ? '127.0.0.1' : remote.ip, port: remote.port, rtcpPort: remote.rtcp_port };
  }

  async addReceivers(ports: number[]): Promise<void> {
    for (let i = 0; i < ports.length; i += 20) {
      await Promise.all(
        ports.slice(i, i + 20).map((port) =>
          this.#request({ request: 'rtp_forward', room: this.#room, publisher_id: this.#publisher, host: '127.0.0.1', streams: [{ mid: '0', port }] }),
        ),
      );
    }
  }

  cpuPids(): number[] {
    return [this.#server!.pid];
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
  }

  #request(body: Record<string, unknown>): Promise<JanusReply> {
    return this.#session!.request(this.#handle, body);
  }
}
