// One synthetic WebRTC client of the hub: its socket.io signaling, one
// libdatachannel PeerConnection per mediasoup transport (real ICE, DTLS and
// SRTP), and either a publisher's media loop or a subscriber's counters.
//
// Publisher: a send transport, a video and an opus producer, RTP written by
// us (rtp.ts) from pre-encoded frames (media.ts) at the clip's frame rate; it
// answers NACKs from a history of its last packets and a PLI/FIR by restarting
// the loop at its first (key) frame, as a browser's encoder would send one.
// Subscriber: a recv transport, a consumer per producer (resumed once its
// track exists), RTCP receiver reports by libdatachannel's RtcpReceivingSession,
// and NACKs and PLIs sent by us from stats.ts, so the hub carries a browser's
// per-receiver state (retransmission buffers, RTCP).

import { randomInt } from 'node:crypto';
import nodeDataChannel from 'node-datachannel';
import type { PeerConnection, Track } from 'node-datachannel';
import type { AudioClip, VideoClip } from './media.js';
import { buildNack, buildPli, buildRtp, buildSenderReport, isRtcp, packetizeH264, packetizeVp8, parseFeedback, parseRtp } from './rtp.js';
import { localDtlsParameters, remoteSdp, type MediaSection, type RtpCodec, type TransportParams } from './sdp.js';
import { newProducerSchema, SignalingClient, type ProducerInfo, producerClosedSchema } from './signaling.js';
import { ReceiveStream } from './stats.js';

const { PeerConnection: PeerConnectionCtor, Video, Audio, RtcpReceivingSession } = nodeDataChannel;

/** Packets a publisher keeps per stream to answer NACKs (about 1 s of 1.5 Mb/s video). */
const RTX_HISTORY = 512;
/** How often a subscriber looks for packets to NACK. */
const FEEDBACK_INTERVAL_MS = 20;
/** Audio payload type and VP8/H.264 payload types the publishers declare (any dynamic value would do). */
const PT = { opus: 100, vp8: 101, h264: 102 } as const;
/** The header extension id publishers give the RFC 6464 audio level (any 1-14 would do). */
const AUDIO_LEVEL_EXTENSION_ID = 1;
/** Time allowed for ICE + DTLS to complete. */
const CONNECT_TIMEOUT_MS = 15000;

export interface ClientTimings {
  /** connect + join ack, ms */
  joinMs?: number;
  /** join request -> first RTP packet of each kind (subscribers), ms */
  firstAudioMs?: number;
  firstVideoMs?: number;
}

export interface ClientFailure {
  stage: string;
  message: string;
}

export interface PeerOptions {
  /** Test hook: drop received packets whose sequence number is a multiple of this, before counting (loss the generator must see). */
  dropEvery?: number;
  /** With dropEvery: let retransmissions (RTX) through, so NACK repairs can be seen to work. */
  keepRetransmissions?: boolean;
  /** Subscribers: ask for last-N before consuming (nothing pinned, this many thumbnails); the other video stays paused on the hub. */
  lastN?: number;
}

export function waitConnected(pc: PeerConnection, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let poll: NodeJS.Timeout | undefined = undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      clearInterval(poll);
      if (err) reject(err);
      else resolve();
    };
    const check = (state: string) => {
      if (state === 'connected') done();
      else if (state === 'failed' || state === 'closed') done(new Error(`${what}: peer connection ${state}`));
    };
    const timer = setTimeout(() => done(new Error(`${what}: ICE/DTLS not connected in ${CONNECT_TIMEOUT_MS} ms (state ${pc.state()})`)), CONNECT_TIMEOUT_MS);
    // libdatachannel changes state on its own threads: a change that happens before the callback is
    // registered is not replayed (seen once in 100 joins), so register first, then read, then keep reading.
    pc.onStateChange(check);
    poll = setInterval(() => check(pc.state()), 100);
    check(pc.state());
  });
}

export function localDescriptionOf(pc: PeerConnection, expected: 'offer' | 'answer'): Promise<string> {
  const current = pc.localDescription();
  if (current && current.type === expected) return Promise.resolve(current.sdp);
  return new Promise((resolve) => pc.onLocalDescription((sdp, type) => type === expected && resolve(sdp)));
}

abstract class LoadClient {
  readonly id: string;
  /** The hub's id for this client once joined. */
  peerId?: string;
  readonly timings: ClientTimings = {};
  failure?: ClientFailure;
  protected signaling?: SignalingClient;
  protected pc?: PeerConnection;
  protected transport?: TransportParams;
  protected joinRequestedAt = 0;
  protected closed = false;
  #stage = 'connect';

  constructor(id: string) {
    this.id = id;
  }

  protected stage(name: string): void {
    this.#stage = name;
  }

  /** Connects, joins and opens media; a failure is recorded (stage and message), never thrown. */
  async start(hubUrl: string, token: string, conferenceId: string): Promise<boolean> {
    try {
      this.joinRequestedAt = performance.now();
      this.signaling = await SignalingClient.connect(hubUrl, token);
      this.signaling.socket.on('disconnect', (reason) => {
        if (!this.closed && !this.failure) this.failure = { stage: 'socket', message: `disconnected: ${reason}` };
      });
      this.stage('join');
      const joined = await this.signaling.request('join', { conferenceId, displayName: `loadtest ${this.id}` });
      this.timings.joinMs = performance.now() - this.joinRequestedAt;
      this.peerId = joined.peerId;
      await this.open(joined);
      return true;
    } catch (err) {
      if (!this.closed) this.failure = { stage: this.#stage, message: (err as Error).message };
      return false;
    }
  }

  /** Last-N (setVideoPreferences): the producers this client shows on its stage, and how many speaker thumbnails. */
  async setVideoPreferences(onStage: string[], thumbnails: number): Promise<{ stage: string[]; thumbnails: string[] }> {
    if (!this.signaling) throw new Error('not connected');
    return this.signaling.request('setVideoPreferences', { onStage, thumbnails });
  }

  protected abstract open(joined: Awaited<ReturnType<SignalingClient['request']>> & { producers: ProducerInfo[]; routerRtpCapabilities: { codecs: unknown[] } }): Promise<void>;

  protected async createTransport(direction: 'send' | 'recv'): Promise<TransportParams> {
    this.stage(`createTransport ${direction}`);
    const { transport } = await this.signaling!.request('createTransport', { direction });
    this.transport = transport;
    // Loopback or LAN hubs: host candidates only, like the hub's WebRtcServer; no STUN/TURN.
    this.pc = new PeerConnectionCtor(`${this.id}-${direction}`, { iceServers: [], disableAutoGathering: false });
    return transport;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopMedia();
    try {
      this.pc?.close();
    } catch {
      // already closed by libdatachannel
    }
    this.signaling?.close();
  }

  protected abstract stopMedia(): void;
}

interface SentStream {
  ssrc: number;
  payloadType: number;
  clockRate: number;
  seq: number;
  track: Track;
  history: Map<number, Buffer>;
  packets: number;
  bytes: number;
}

export class Publisher extends LoadClient {
  nacksReceived = 0;
  retransmitted = 0;
  keyframeRequests = 0;
  sendErrors = 0;
  /** One video stream per layer (one, or three for simulcast: low to high), and the audio stream. */
  readonly streams: { video: SentStream[]; audio?: SentStream } = { video: [] };
  #timers: NodeJS.Timeout[] = [];
  #videoIndex = 0;
  #pictureIds: number[] = [];

  /**
   * `video`: the clip of each layer, low to high (one clip: no simulcast; none: audio only).
   * `audioLevel`: when given, every audio packet carries this RFC 6464 level
   * (0 loudest .. 127 silence), read at each packet, so a test can make this
   * publisher the dominant speaker.
   */
  constructor(
    id: string,
    readonly video: VideoClip[],
    readonly audio: AudioClip,
    readonly audioLevel?: () => number,
  ) {
    super(id);
  }

  protected async open(): Promise<void> {
    const transport = await this.createTransport('send');
    const pc = this.pc!;
    const cname = this.cname;
    const sections = this.addTracks(pc);
    this.stage('offer');
    pc.setLocalDescription();
    const offer = await localDescriptionOf(pc, 'offer');
    this.stage('connectTransport');
    await this.signaling!.request('connectTransport', { transportId: transport.id, dtlsParameters: localDtlsParameters(offer) });
    pc.setRemoteDescription(remoteSdp(transport, sections, 'recvonly', 1), 'answer');
    this.stage('produce');
    for (const section of sections) {
      const encodings =
        section.kind === 'video'
          ? this.streams.video.map((s, i) => ({ ssrc: s.ssrc, ...(this.video.length > 1 ? { maxBitrate: this.video[i]!.bitrate * 1.2 } : {}) }))
          : [{ ssrc: this.streams.audio!.ssrc }];
      const headerExtensions = section.kind === 'audio' && this.audioLevel ? [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: AUDIO_LEVEL_EXTENSION_ID }] : [];
      await this.signaling!.request('produce', {
        transportId: transport.id,
        kind: section.kind,
        rtpParameters: { mid: section.mid, codecs: [section.codec], encodings, headerExtensions, rtcp: { cname, reducedSize: true } },
      });
    }
    this.stage('ice/dtls');
    await waitConnected(pc, 'send transport');
    this.startMedia();
  }

  protected get cname(): string {
    return `loadtest-${this.id}`;
  }

  /**
   * Adds the video track (one SSRC per layer) and the opus track to `pc`, and
   * returns their m-lines as the far side must describe them. Apart from
   * open() so that a publisher of another SFU's signaling (the Janus row of
   * scripts/bench/webrtc.ts) sends the same media the same way.
   */
  protected addTracks(pc: PeerConnection): MediaSection[] {
    const cname = this.cname;
    const sections: MediaSection[] = [];
    const newStream = (track: Track, codec: RtpCodec, ssrc: number): SentStream => {
      const stream: SentStream = { ssrc, payloadType: codec.payloadType, clockRate: codec.clockRate, seq: randomInt(0x8000), track, history: new Map(), packets: 0, bytes: 0 };
      return stream;
    };
    const feedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];
    const first = this.video[0];
    if (first) {
      const codec: RtpCodec =
        first.codec === 'vp8'
          ? { mimeType: 'video/VP8', payloadType: PT.vp8, clockRate: 90000, rtcpFeedback: feedback }
          : { mimeType: 'video/H264', payloadType: PT.h264, clockRate: 90000, rtcpFeedback: feedback, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 } };
      const mid = String(sections.length);
      const media = new Video(mid, 'SendOnly');
      if (first.codec === 'vp8') media.addVP8Codec(codec.payloadType);
      else media.addH264Codec(codec.payloadType, '42e01f');
      // Simulcast as mediasoup takes it from a client that names SSRCs: one m-line, one SSRC per layer.
      const ssrcs = this.video.map(() => randomInt(1, 0xffffffff));
      for (const ssrc of ssrcs) media.addSSRC(ssrc, cname, cname, `${cname}-video`);
      const track = pc.addTrack(media);
      sections.push({ mid, kind: 'video', codec });
      this.streams.video = ssrcs.map((ssrc) => newStream(track, codec, ssrc));
      this.#pictureIds = ssrcs.map(() => randomInt(0x7fff));
      track.onMessage((msg) => this.#onRtcp(msg));
    }
    const audioCodec: RtpCodec = { mimeType: 'audio/opus', payloadType: PT.opus, clockRate: 48000, channels: 2, parameters: { useinbandfec: 1 } };
    {
      const mid = String(sections.length);
      const media = new Audio(mid, 'SendOnly');
      media.addOpusCodec(audioCodec.payloadType);
      const ssrc = randomInt(1, 0xffffffff);
      media.addSSRC(ssrc, cname, cname, `${cname}-audio`);
      const track = pc.addTrack(media);
      sections.push({ mid, kind: 'audio', codec: audioCodec });
      this.streams.audio = newStream(track, audioCodec, ssrc);
      track.onMessage((msg) => this.#onRtcp(msg));
    }
    return sections;
  }

  /** Starts the audio and video loops, once the transport is connected. */
  protected startMedia(): void {
    this.#startLoops();
  }

  #send(stream: SentStream, payload: Buffer, marker: boolean, timestamp: number): void {
    const seq = stream.seq;
    stream.seq = (stream.seq + 1) & 0xffff;
    const level = stream === this.streams.audio && this.audioLevel ? { id: AUDIO_LEVEL_EXTENSION_ID, level: this.audioLevel() } : undefined;
    const packet = buildRtp({ payloadType: stream.payloadType, marker, sequenceNumber: seq, timestamp, ssrc: stream.ssrc }, payload, level);
    stream.history.set(seq, packet);
    if (stream.history.size > RTX_HISTORY) stream.history.delete(stream.history.keys().next().value as number);
    if (this.#write(stream, packet)) {
      stream.packets++;
      stream.bytes += packet.length;
    }
  }

  #write(stream: SentStream, packet: Buffer): boolean {
    try {
      if (stream.track.sendMessageBinary(packet)) return true;
    } catch {
      // a closed track throws; counted below
    }
    this.sendErrors++;
    return false;
  }

  #startLoops(): void {
    const started = performance.now();
    const audio = this.streams.audio!;
    let audioTs = randomInt(0x7fffffff);
    let audioIndex = 0;
    let audioSent = 0;
    // Timers drift and bunch under load; send as many 20 ms packets as wall time says are due.
    this.#timers.push(
      setInterval(() => {
        const due = Math.floor((performance.now() - started) / 20) + 1;
        for (; audioSent < due; audioSent++) {
          this.#send(audio, this.audio.packets[audioIndex]!, false, audioTs);
          audioIndex = (audioIndex + 1) % this.audio.packets.length;
          audioTs = (audioTs + 960) >>> 0;
        }
      }, 20),
    );
    const layers = this.streams.video;
    const first = this.video[0];
    if (layers.length === 0 || !first) return;
    let videoTs = randomInt(0x7fffffff);
    let framesSent = 0;
    /** The RTP timestamp of the last frame sent and when (performance.now()), for the sender reports. */
    let lastFrame = { ts: videoTs, at: performance.now() };
    const frameMs = 1000 / first.fps;
    const frameCount = Math.min(...this.video.map((c) => c.frames.length));
    this.#timers.push(
      setInterval(() => {
        const due = Math.floor((performance.now() - started) / frameMs) + 1;
        for (; framesSent < due; framesSent++) {
          // Every layer sends its clip's frame of the same index with the same timestamp, as one encoder would.
          layers.forEach((stream, layer) => {
            const clip = this.video[layer]!;
            const frame = clip.frames[this.#videoIndex]!;
            const payloads = clip.codec === 'vp8' ? packetizeVp8(frame.data[0]!, this.#pictureIds[layer]!) : packetizeH264(frame.data);
            payloads.forEach((p, i) => this.#send(stream, p, i === payloads.length - 1, videoTs));
            this.#pictureIds[layer] = (this.#pictureIds[layer]! + 1) & 0x7fff;
          });
          lastFrame = { ts: videoTs, at: performance.now() };
          this.#videoIndex = (this.#videoIndex + 1) % frameCount;
          videoTs = (videoTs + 90000 / first.fps) >>> 0;
        }
      }, frameMs),
    );
    // A sender report per layer once a second, as a browser sends them: without them mediasoup keeps a
    // simulcast viewer on the layer it started with (it cannot line up the layers' timestamps).
    this.#timers.push(
      setInterval(() => {
        const rtpNow = (lastFrame.ts + Math.round((performance.now() - lastFrame.at) * 90)) >>> 0;
        const wallMs = Date.now();
        for (const stream of layers) this.#write(stream, buildSenderReport(stream.ssrc, wallMs, rtpNow, stream.packets, stream.bytes - 12 * stream.packets));
      }, 1000),
    );
  }

  #onRtcp(msg: Buffer): void {
    if (!isRtcp(msg)) return;
    for (const fb of parseFeedback(msg)) {
      const stream = fb.mediaSsrc === this.streams.audio?.ssrc ? this.streams.audio : this.streams.video.find((s) => s.ssrc === fb.mediaSsrc);
      if (!stream) continue;
      if (fb.type === 'nack') {
        this.nacksReceived++;
        for (const seq of fb.seqs) {
          const packet = stream.history.get(seq);
          if (packet && this.#write(stream, packet)) this.retransmitted++;
        }
      } else if (stream !== this.streams.audio) {
        // No encoder to ask: restart the loop (every layer) at frame 0, a keyframe.
        this.keyframeRequests++;
        this.#videoIndex = 0;
      }
    }
  }

  protected stopMedia(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }
}

export interface ReceivedTrack {
  consumerId: string;
  producerId: string;
  ssrc: number;
  rtx?: { payloadType: number; ssrc: number };
  stream: ReceiveStream;
  track?: Track;
}

export class Subscriber extends LoadClient {
  readonly received = new Map<string, ReceivedTrack>();
  rtcpSendErrors = 0;
  /** Packets the dropEvery test hook threw away, retransmissions included. */
  droppedByHook = 0;
  #rtpCapabilities?: { codecs: unknown[]; headerExtensions: [] };
  #sections: MediaSection[] = [];
  #byMid = new Map<string, ReceivedTrack>();
  #version = 1;
  #connected = false;
  #pending: ProducerInfo[] = [];
  #consuming: Promise<void> = Promise.resolve();
  #timer?: NodeJS.Timeout;
  readonly #ssrc = randomInt(1, 0xffffffff);

  constructor(
    id: string,
    readonly videoCodec: 'vp8' | 'h264',
    readonly options: PeerOptions = {},
  ) {
    super(id);
  }

  protected async open(joined: { producers: ProducerInfo[]; routerRtpCapabilities: { codecs: unknown[] } }): Promise<void> {
    const wanted = this.videoCodec === 'vp8' ? 'video/vp8' : 'video/h264';
    // What this client can receive: opus, the one video codec and its RTX (see sdp.ts on why RTX), no header extensions.
    type CapCodec = { mimeType: string; preferredPayloadType?: number; parameters?: Record<string, unknown> };
    const caps = joined.routerRtpCapabilities.codecs as CapCodec[];
    const media = caps.filter((c) => c.mimeType.toLowerCase() === 'audio/opus' || c.mimeType.toLowerCase() === wanted);
    const payloadTypes = new Set(media.map((c) => c.preferredPayloadType));
    const rtx = caps.filter((c) => c.mimeType.toLowerCase() === 'video/rtx' && payloadTypes.has(Number(c.parameters?.apt)));
    this.#rtpCapabilities = { codecs: [...media, ...rtx], headerExtensions: [] };
    await this.createTransport('recv');
    if (this.options.lastN !== undefined) {
      this.stage('setVideoPreferences');
      await this.setVideoPreferences([], this.options.lastN);
    }
    this.pc!.onTrack((track) => this.onTrack(track));
    this.signaling!.socket.on('newProducer', (data: unknown) => {
      const info = newProducerSchema.safeParse(data);
      if (info.success) this.#enqueue([info.data]);
    });
    this.signaling!.socket.on('producerClosed', (data: unknown) => {
      const info = producerClosedSchema.safeParse(data);
      if (info.success) for (const r of this.received.values()) if (r.producerId === info.data.producerId) r.track = undefined;
    });
    this.#enqueue(joined.producers);
    await this.#consuming;
    if (this.failure) throw new Error(this.failure.message);
    this.startFeedback();
  }

  /** Consumes in batches, one renegotiation per batch, in order (a newProducer during a negotiation waits for it). */
  #enqueue(producers: ProducerInfo[]): void {
    this.#pending.push(...producers.filter((p) => p.kind === 'audio' || p.kind === 'video'));
    this.#consuming = this.#consuming.then(() => this.#consumePending()).catch((err: Error) => {
      if (!this.closed && !this.failure) this.failure = { stage: 'consume', message: err.message };
    });
  }

  async #consumePending(): Promise<void> {
    const batch = this.#pending.splice(0);
    if (batch.length === 0 || this.closed) return;
    const transport = this.transport!;
    const pc = this.pc!;
    const made: ReceivedTrack[] = [];
    this.stage('consume');
    for (const producer of batch) {
      const { consumer } = await this.signaling!.request('consume', { transportId: transport.id, producerId: producer.producerId, rtpCapabilities: this.#rtpCapabilities });
      const codec = consumer.rtpParameters.codecs[0]!;
      const encoding = consumer.rtpParameters.encodings[0]!;
      const rtxCodec = consumer.rtpParameters.codecs.find((c) => c.mimeType.toLowerCase().endsWith('/rtx'));
      const rtx = rtxCodec && encoding.rtx ? { payloadType: rtxCodec.payloadType, ssrc: encoding.rtx.ssrc } : undefined;
      const mid = String(this.#sections.length);
      this.#sections.push({ mid, kind: consumer.kind, codec, ssrc: encoding.ssrc, cname: consumer.rtpParameters.rtcp?.cname, rtx });
      const received: ReceivedTrack = { consumerId: consumer.id, producerId: producer.producerId, ssrc: encoding.ssrc, rtx, stream: new ReceiveStream(consumer.kind, codec.clockRate) };
      this.addReceived(mid, received);
      made.push(received);
    }
    this.stage('negotiate');
    pc.setRemoteDescription(remoteSdp(transport, this.#sections, 'sendrecv', ++this.#version), 'offer');
    const answer = await localDescriptionOf(pc, 'answer');
    if (!this.#connected) {
      this.stage('connectTransport');
      await this.signaling!.request('connectTransport', { transportId: transport.id, dtlsParameters: localDtlsParameters(answer) });
      this.stage('ice/dtls');
      await waitConnected(pc, 'recv transport');
      this.#connected = true;
    }
    this.stage('resumeConsumer');
    for (const r of made) await this.signaling!.request('resumeConsumer', { consumerId: r.consumerId });
  }

  /** A stream to count, received on the m-line `mid` of the recv transport. */
  protected addReceived(mid: string, received: ReceivedTrack): void {
    this.#byMid.set(mid, received);
    this.received.set(received.consumerId, received);
  }

  /** Starts sending NACKs and PLIs for what goes missing, once the streams are set up. */
  protected startFeedback(): void {
    this.#timer ??= setInterval(() => this.#feedback(), FEEDBACK_INTERVAL_MS);
  }

  /** libdatachannel's onTrack: counts what arrives on the track of a known m-line. */
  protected onTrack(track: Track): void {
    const received = this.#byMid.get(track.mid());
    if (!received) return;
    received.track = track;
    // Receiver reports (and keyframe requests) like a browser's receiver; RTP still reaches onMessage.
    track.setMediaHandler(new RtcpReceivingSession());
    const { stream } = received;
    const { dropEvery, keepRetransmissions } = this.options;
    track.onMessage((msg) => {
      if (isRtcp(msg)) return;
      const rtp = parseRtp(msg);
      // Padding-only packets are the hub probing bandwidth, not media.
      if (!rtp || rtp.payloadLength === 0) return;
      let retransmission = false;
      if (received.rtx && rtp.ssrc === received.rtx.ssrc && rtp.payloadType === received.rtx.payloadType) {
        // RFC 4588: the first two payload bytes are the original sequence number.
        if (rtp.payloadLength < 2) return;
        rtp.sequenceNumber = msg.readUInt16BE(rtp.payloadOffset);
        retransmission = true;
      } else if (rtp.ssrc !== received.ssrc) return;
      if (dropEvery && rtp.sequenceNumber % dropEvery === 0 && !(retransmission && keepRetransmissions)) {
        this.droppedByHook++;
        return;
      }
      const now = performance.now();
      if (stream.firstPacketAt === undefined) {
        const since = now - this.joinRequestedAt;
        if (stream.kind === 'video') this.timings.firstVideoMs ??= since;
        else this.timings.firstAudioMs ??= since;
      }
      stream.receive(rtp.sequenceNumber, rtp.timestamp, msg.length, now);
    });
  }

  #feedback(): void {
    const now = performance.now();
    for (const r of this.received.values()) {
      if (!r.track) continue;
      const { nack, pli } = r.stream.due(now);
      if (nack.length > 0) {
        if (this.#rtcp(r.track, buildNack(this.#ssrc, r.ssrc, nack))) {
          r.stream.nacksSent++;
          r.stream.nackedPackets += nack.length;
        }
      }
      if (pli && this.#rtcp(r.track, buildPli(this.#ssrc, r.ssrc))) r.stream.plisSent++;
    }
  }

  #rtcp(track: Track, packet: Buffer): boolean {
    try {
      if (track.sendMessageBinary(packet)) return true;
    } catch {
      // closed track
    }
    this.rtcpSendErrors++;
    return false;
  }

  protected stopMedia(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
