import { Device } from 'mediasoup-client';
import type { Consumer, Producer, Transport } from 'mediasoup-client/types';
import type { JoinReply, PeerSummary, ProducerInfo, ProducerSource, RequestPayload, RequestReply, TransportOptions } from '../contract';
import { RequestFailed, SignalingClient } from '../signaling';
import { telemetry } from '../telemetry';
import { Emitter } from '../ui/emitter';
import { DeviceFeed, type DeviceFeedEvents } from './deviceFeed';
import { LocalMedia, type InputChoice } from './localMedia';

export type ConnectionState = 'connecting' | 'joining' | 'live' | 'reconnecting' | 'disconnected' | 'left' | 'error' | 'ended';

/** Why the hub ended this page's access (state 'ended'): its token expired, was revoked, or is no longer accepted on reconnect. */
export type AccessEnd = 'expired' | 'revoked' | 'unauthorized';

/** What the viewer asked to receive: everything, the lowest simulcast layer, or no video at all. */
export type ReceiveMode = 'full' | 'low' | 'audio';

export interface RemoteConsumer {
  consumer: Consumer;
  info: ProducerInfo;
}

/** What this viewer shows (last-N, docs/PROTOCOL.md `setVideoPreferences`). */
export type VideoPreferences = RequestPayload<'setVideoPreferences'>;
/** The video the hub forwards to this viewer, as of its latest reply: producer ids. */
export type VideoChoice = RequestReply<'setVideoPreferences'>;

export type SessionEvents = {
  state: [ConnectionState, string?];
  joined: [JoinReply];
  peerJoined: [PeerSummary];
  peerLeft: [string];
  consumerAdded: [RemoteConsumer];
  consumerRemoved: [RemoteConsumer];
  localMedia: [MediaStream | undefined];
  ownProducersChanged: [];
  activeSpeaker: [string];
  videoChoice: [VideoChoice];
  /** The hub paused (true) or resumed (false) one of our video consumers for bandwidth (docs/LINKS.md). */
  videoSuspended: [consumerId: string, suspended: boolean];
} & DeviceFeedEvents;

export interface SessionOptions extends InputChoice {
  token: string;
  conferenceId: string;
  displayName: string;
}

// A transport that stays 'disconnected' this long gets an ICE restart without
// waiting for 'failed' (Chromium takes ~30 s to declare failure).
const ICE_RESTART_AFTER_DISCONNECTED_MS = 2500;

// Scrolling the grid or resizing the window changes the visible tiles many
// times a second: the hub hears the choice once it settles.
const VIDEO_PREFERENCES_DEBOUNCE_MS = 300;

// After a ping time-out of its own, the page reconnects no sooner than this (±20 %):
// the hub notices the same silence at its own ping time-out, later by half a
// round trip and by its event loop's lag. A reconnect that reaches the hub before
// that finds the old socket still open: socket.io alone has no session to recover
// then, and the page would join again as a new peer. The hub now closes such a
// stale socket and recovers its session (src/signaling/recoveryStore.ts); waiting
// spares it that and keeps hubs without it working (docs/LINKS.md, "Recovery
// after a drop"). Media do not wait for it: ICE comes back on the old pair by itself.
const RECONNECT_AFTER_OWN_PING_TIMEOUT_MS = 3000;

// A hub unreachable this long (its signaling.reconnectGraceMs: our peer there is
// gone) is given up for another hub of its cluster, when the join reply named one.
const HUB_LOST_AFTER_MS = 10_000;

/**
 * One peer's life in a conference over the public contract (docs/PROTOCOL.md,
 * "Signaling"): join, a send and a recv transport, consumers of everyone else,
 * and recovery after network drops. Its own camera, microphone and screen are
 * LocalMedia's, the device stream DeviceFeed's. Views listen to its events and
 * call its actions.
 */
export class ConferenceSession extends Emitter<SessionEvents> {
  readonly signaling: SignalingClient;
  readonly peers = new Map<string, PeerSummary>();
  readonly producers = new Map<string, ProducerInfo>();
  readonly consumers = new Map<string, RemoteConsumer>();
  state: ConnectionState = 'connecting';
  receiveMode: ReceiveMode = 'full';

  readonly #options: SessionOptions;
  readonly #device = new Device();
  readonly #local: LocalMedia;
  readonly #feed: DeviceFeed;
  #sendTransport: Transport | undefined;
  #recvTransport: Transport | undefined;
  #joined = false;
  #left = false;
  #sessionLost = false;
  /** Other hubs of this hub's cluster (join reply `hubs`), to rejoin through if this one is lost. */
  #alternates: Array<{ hubId: string; url: string }> = [];
  /** When the signaling connection dropped; cleared on connect. */
  #downSince: number | undefined;
  #queue: Promise<void> = Promise.resolve();
  readonly #consuming = new Set<string>();
  readonly #iceTimers = new Map<string, number>();
  #videoPreferences: VideoPreferences | undefined;
  #videoPreferencesTimer: number | undefined;

  constructor(options: SessionOptions) {
    super();
    this.#options = options;
    // Read at every (re)connect, after the constructor: the feed exists by then.
    this.signaling = new SignalingClient(options.token, () => this.#feed.handshakeAuth());
    this.#feed = new DeviceFeed(this.signaling, {
      devices: (devices) => this.emit('devices', devices),
      deviceStatus: (info) => this.emit('deviceStatus', info),
      deviceReadings: (deviceId, readings, how) => this.emit('deviceReadings', deviceId, readings, how),
    });
    this.#local = new LocalMedia(
      {
        signaling: this.signaling,
        device: this.#device,
        sendTransport: () => this.#sendTransport,
        run: (task) => this.#run(task),
        localMedia: (stream) => this.emit('localMedia', stream),
        ownProducersChanged: () => this.emit('ownProducersChanged'),
      },
      options,
    );
    this.#listen();
    // Closing or reloading the page ends the session now (a deliberate disconnect),
    // rather than leaving a ghost tile for the hub's reconnect grace period.
    window.addEventListener('pagehide', () => this.signaling.socket.disconnect());
    telemetry.stats = () => this.#consumerStats();
  }

  get peerId(): string {
    return telemetry.peerId;
  }

  get sendTransport(): Transport | undefined {
    return this.#sendTransport;
  }

  get recvTransport(): Transport | undefined {
    return this.#recvTransport;
  }

  // ---- local media (LocalMedia) ----

  get ownProducers(): ReadonlyMap<ProducerSource, Producer> {
    return this.#local.producers;
  }

  get localStream(): MediaStream | undefined {
    return this.#local.stream;
  }

  get micEnabled(): boolean {
    return this.#local.micEnabled;
  }

  get cameraEnabled(): boolean {
    return this.#local.cameraEnabled;
  }

  get sharingScreen(): boolean {
    return this.#local.sharingScreen;
  }

  setMicEnabled(on: boolean): Promise<void> {
    return this.#local.setMicEnabled(on);
  }

  setCameraEnabled(on: boolean): Promise<void> {
    return this.#local.setCameraEnabled(on);
  }

  startScreenShare(): Promise<void> {
    return this.#local.startScreenShare();
  }

  stopScreenShare(): Promise<void> {
    return this.#local.stopScreenShare();
  }

  /** Replaces the camera or microphone track (device picker) without renegotiating. */
  switchInput(kind: 'audio' | 'video', deviceId: string): Promise<void> {
    return this.#local.switchInput(kind, deviceId);
  }

  // ---- actions ----

  /** Switches what this viewer receives; 'audio' rebuilds the recv transport so video stops flowing. */
  setReceiveMode(mode: ReceiveMode): Promise<void> {
    const previous = this.receiveMode;
    this.receiveMode = mode;
    return this.#run(async () => {
      if (!this.#joined) return;
      if (mode === 'audio') {
        // The contract has no closeConsumer: a fresh recv transport with audio
        // consumers only is the way to stop video. The hub closes the old one
        // when its DTLS closes and tells us with transportClosed (ignored).
        await this.#rebuildRecvTransport();
        return;
      }
      if (previous === 'audio') await this.#consumeAll();
      for (const entry of this.consumers.values()) await this.#applyLayers(entry);
    });
  }

  /**
   * Tells the hub what this viewer shows (debounced): it then forwards only
   * that video. Sent again after every (re)join, and after every dominant
   * speaker change, so the reply (`videoChoice`) stays the set the hub forwards.
   */
  setVideoPreferences(preferences: VideoPreferences): void {
    this.#videoPreferences = { onStage: [...preferences.onStage], thumbnails: preferences.thumbnails };
    this.#scheduleVideoPreferences();
  }

  #scheduleVideoPreferences(): void {
    if (!this.#videoPreferences) return;
    window.clearTimeout(this.#videoPreferencesTimer);
    this.#videoPreferencesTimer = window.setTimeout(() => void this.#sendVideoPreferences(), VIDEO_PREFERENCES_DEBOUNCE_MS);
  }

  async #sendVideoPreferences(): Promise<void> {
    const preferences = this.#videoPreferences;
    if (!preferences || !this.#joined || !this.signaling.socket.connected) return; // #join sends it once back
    try {
      const { stage, thumbnails } = await this.signaling.request('setVideoPreferences', preferences);
      // A newer choice may have been sent meanwhile: only the latest reply counts.
      if (preferences !== this.#videoPreferences) return;
      telemetry.videoPreferences = preferences;
      telemetry.videoChoice = { stage, thumbnails };
      this.emit('videoChoice', { stage, thumbnails });
    } catch (err) {
      console.warn('setVideoPreferences failed', err);
    }
  }

  async leave(): Promise<void> {
    this.#left = true;
    await this.signaling.request('leave', {}, 3000).catch(() => undefined);
    this.#closeMedia();
    this.#local.release(false);
    this.signaling.socket.disconnect();
    this.#joined = false;
    this.#setState('left');
  }

  /**
   * The token is dead: no reconnect (socket.io's manager would otherwise retry
   * with it forever, each attempt a refused handshake on the hub), media closed,
   * camera and microphone released. Only a new link (a new token) goes on.
   */
  #endAccess(why: AccessEnd): void {
    if (this.state === 'ended') return;
    this.#left = true;
    this.signaling.socket.io.reconnection(false);
    this.signaling.socket.disconnect();
    this.#closeMedia();
    this.#local.release(true);
    this.#joined = false;
    this.#setState('ended', why);
  }

  /** After leave(): connect and join again with the same token. */
  rejoin(): void {
    this.#left = false;
    telemetry.peerId = '';
    this.#setState('connecting');
    this.signaling.socket.connect();
  }

  // ---- signaling events ----

  #listen(): void {
    const socket = this.signaling.socket;
    socket.onAny((name: string, data: unknown) => {
      // Device readings are many per second: keep their shape, not their samples.
      const entry = name === 'deviceReadings' ? { name, data: { deviceId: (data as { deviceId: string }).deviceId } } : { name, data };
      telemetry.events.push(entry);
      if (telemetry.events.length > 2000) telemetry.events.splice(0, 1000);
    });
    socket.on('peerJoined', (p) => {
      this.peers.set(p.peerId, p);
      this.emit('peerJoined', p);
    });
    socket.on('peerLeft', ({ peerId }) => {
      this.peers.delete(peerId);
      this.emit('peerLeft', peerId);
    });
    socket.on('newProducer', (info) => {
      this.producers.set(info.producerId, info);
      void this.#run(() => this.#consumeSafely(info));
    });
    socket.on('producerClosed', ({ producerId }) => {
      this.producers.delete(producerId);
      this.#local.producerClosed(producerId);
    });
    socket.on('consumerClosed', ({ consumerId }) => this.#dropConsumer(consumerId));
    socket.on('transportClosed', ({ transportId }) => {
      // Only our current transports matter; an abandoned one closing is expected.
      if (transportId === this.#sendTransport?.id) {
        this.#setState('reconnecting');
        void this.#run(async () => {
          await this.#rebuildSendTransport();
          this.#setState('live');
        });
      } else if (transportId === this.#recvTransport?.id) {
        this.#setState('reconnecting');
        void this.#run(async () => {
          await this.#rebuildRecvTransport();
          this.#setState('live');
        });
      }
    });
    socket.on('videoSuspended', ({ consumerId }) => this.emit('videoSuspended', consumerId, true));
    socket.on('videoResumed', ({ consumerId }) => this.emit('videoSuspended', consumerId, false));
    socket.on('activeSpeaker', ({ peerId }) => {
      this.emit('activeSpeaker', peerId);
      // The hub re-chose this viewer's thumbnails: ask again to learn which.
      this.#scheduleVideoPreferences();
    });
    // Device events are DeviceFeed's.

    // The hub cuts a socket whose token expired or was revoked (docs/PROTOCOL.md):
    // the token will not work again, so the page stops for good.
    socket.on('tokenExpired', () => this.#endAccess('expired'));
    socket.on('tokenRevoked', () => this.#endAccess('revoked'));
    socket.on('connect_error', (err) => {
      if (err.message === 'unauthorized') {
        // Refused at a (re)connect: after a join, the token expired or was revoked while we were away.
        if (this.#joined) this.#endAccess('unauthorized');
        else {
          socket.disconnect();
          this.#setState('error', 'unauthorized');
        }
      } else if (this.#joined) this.#setState('disconnected');
    });
    socket.on('disconnect', (reason) => {
      if (this.#left || this.state === 'error' || this.state === 'ended') return;
      this.#downSince ??= Date.now();
      this.#setState('disconnected');
      if (reason === 'ping timeout') this.#reconnectOnceHubNotices();
      if (reason === 'io server disconnect') {
        // The hub ended our session (restart, drain): socket.io does not retry
        // that by itself, and the peer is gone on the hub even if socket.io
        // later reports the connection as recovered.
        this.#sessionLost = true;
        window.setTimeout(() => socket.connect(), 1000 + Math.random() * 1000);
      }
    });
    socket.io.on('reconnect_attempt', () => {
      // This hub has been unreachable past its grace period (our session there is gone
      // anyway): rejoin through another hub of its cluster, as the join reply listed them.
      const other = this.#alternates[0];
      if (!this.#left && other && this.#downSince !== undefined && Date.now() - this.#downSince > HUB_LOST_AFTER_MS) {
        followRedirect(other.url, this.#options.token);
        return;
      }
      if (!this.#left) this.#setState('reconnecting');
    });
    socket.on('connect', () => {
      this.#downSince = undefined;
      if (this.#left) return;
      if (!this.#joined) {
        void this.#run(() => this.#join());
        return;
      }
      this.#setState('reconnecting');
      const sessionLost = this.#sessionLost || !socket.recovered;
      this.#sessionLost = false;
      void this.#run(async () => {
        // Recovered: same session on the hub, only the network path changed.
        if (!sessionLost && (await this.#restartAllIce())) {
          this.#setState('live');
          return;
        }
        // The hub dropped our session: join again from scratch.
        this.#closeMedia();
        this.#joined = false;
        await this.#join();
      });
    });
  }

  /** Runs before socket.io schedules its reconnect: the first attempt waits longer, the later ones as before. */
  #reconnectOnceHubNotices(): void {
    const manager = this.signaling.socket.io;
    const delay = manager.reconnectionDelay();
    const jitter = manager.randomizationFactor();
    manager.reconnectionDelay(RECONNECT_AFTER_OWN_PING_TIMEOUT_MS).randomizationFactor(0.2);
    manager.once('reconnect_attempt', () => manager.reconnectionDelay(delay).randomizationFactor(jitter));
  }

  /** ICE restart on both transports; false when the hub no longer knows this peer. */
  async #restartAllIce(): Promise<boolean> {
    for (const transport of [this.#sendTransport, this.#recvTransport]) {
      if (!transport || transport.closed) continue;
      try {
        const { iceParameters } = await this.signaling.request('restartIce', { transportId: transport.id });
        await transport.restartIce({ iceParameters });
      } catch (err) {
        if (err instanceof RequestFailed && err.code === 'bad_request') return false; // "join a conference first"
        if (!(err instanceof RequestFailed && err.code === 'not_found')) throw err; // not_found: transportClosed rebuilds it
      }
    }
    return true;
  }

  // ---- join and media setup ----

  async #join(): Promise<void> {
    this.#setState('joining');
    telemetry.joinRequestedAt ||= performance.now();
    const joined = await this.signaling
      .request('join', {
        conferenceId: this.#options.conferenceId,
        displayName: this.#options.displayName,
      })
      .catch((err: unknown) => {
        if (err instanceof RequestFailed && err.redirect) followRedirect(err.redirect.url, this.#options.token);
        throw err;
      });
    telemetry.joinedAt ||= performance.now();
    telemetry.peerId = joined.peerId;
    this.#joined = true;
    this.#alternates = joined.hubs ?? [];
    // Take the hub's snapshot before any await: peerJoined and newProducer events
    // that arrive while the device loads come after it and must not be wiped
    // (CI once lost a producer announced during a slow Device load).
    this.peers.clear();
    this.producers.clear();
    for (const p of joined.peers) this.peers.set(p.peerId, p);
    for (const p of joined.producers) this.producers.set(p.producerId, p);
    // Ask for both transports now: the hub creates them while we load the device and draw the page.
    const recvOptions = this.#requestTransport('recv');
    const sendOptions = this.#requestTransport('send');
    if (!this.#device.loaded) await this.#device.load({ routerRtpCapabilities: joined.routerRtpCapabilities });
    this.emit('joined', { ...joined, peers: [...this.peers.values()], producers: [...this.producers.values()] });
    this.#feed.joined(joined.devices ?? []);
    // Receive before publishing: getUserMedia and the simulcast encoders compete for the
    // CPU with the first remote frames (measured: in parallel, the resumes came later).
    await this.#rebuildRecvTransport(recvOptions);
    await this.#rebuildSendTransport(sendOptions);
    this.#setState('live');
    // A rejoin is a new peer on the hub: it knows nothing of what this page shows.
    this.#scheduleVideoPreferences();
  }

  async #rebuildSendTransport(options?: Promise<TransportOptions>): Promise<void> {
    this.#local.closeProducers();
    this.#sendTransport?.close();
    this.#sendTransport = await this.#createTransport('send', options);
    await this.#local.publish();
  }

  async #rebuildRecvTransport(options?: Promise<TransportOptions>): Promise<void> {
    const old = this.#recvTransport;
    this.#recvTransport = await this.#createTransport('recv', options);
    for (const id of [...this.consumers.keys()]) this.#dropConsumer(id);
    old?.close();
    await this.#consumeAll();
  }

  /**
   * All at once, videos first: each consume is a few round trips, and the remote
   * video the joiner waits for need not queue behind an audio consume.
   */
  async #consumeAll(): Promise<void> {
    const infos = [...this.producers.values()].sort((a, b) => Number(a.kind === 'audio') - Number(b.kind === 'audio'));
    await Promise.all(infos.map((info) => this.#consumeSafely(info)));
  }

  #requestTransport(direction: 'send' | 'recv'): Promise<TransportOptions> {
    const options = this.signaling.request('createTransport', { direction }).then((r) => r.transport);
    options.catch(() => undefined); // awaited later; a failure must not surface as unhandled meanwhile
    return options;
  }

  async #createTransport(direction: 'send' | 'recv', requested?: Promise<TransportOptions>): Promise<Transport> {
    const options = await (requested ?? this.#requestTransport(direction));
    const transport = direction === 'send' ? this.#device.createSendTransport(options) : this.#device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.signaling.request('connectTransport', { transportId: transport.id, dtlsParameters }).then(() => callback(), errback);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        this.signaling
          .request('produce', { transportId: transport.id, kind, rtpParameters, source: sourceOf(appData) })
          .then(({ producerId }) => callback({ id: producerId }), errback);
      });
    }
    transport.on('connectionstatechange', (state) => this.#onTransportState(transport, state));
    return transport;
  }

  #onTransportState(transport: Transport, state: RTCPeerConnectionState): void {
    window.clearTimeout(this.#iceTimers.get(transport.id));
    this.#iceTimers.delete(transport.id);
    if (transport !== this.#sendTransport && transport !== this.#recvTransport) return;
    if (state === 'failed') {
      this.#setState('reconnecting');
      void this.#restartIce(transport);
    } else if (state === 'disconnected') {
      this.#setState('reconnecting');
      this.#iceTimers.set(
        transport.id,
        window.setTimeout(() => void this.#restartIce(transport), ICE_RESTART_AFTER_DISCONNECTED_MS),
      );
    } else if (state === 'connected' && this.signaling.socket.connected && this.state === 'reconnecting') {
      this.#setState('live');
    }
  }

  async #restartIce(transport: Transport): Promise<void> {
    if (transport.closed || !this.signaling.socket.connected) return;
    try {
      const { iceParameters } = await this.signaling.request('restartIce', { transportId: transport.id });
      await transport.restartIce({ iceParameters });
    } catch (err) {
      // not_found: the hub already closed it; transportClosed will rebuild it.
      if (!(err instanceof RequestFailed && err.code === 'not_found')) console.warn('ICE restart failed', err);
    }
  }

  #wanted(info: ProducerInfo): boolean {
    return info.peerId !== this.peerId && (this.receiveMode !== 'audio' || info.kind === 'audio');
  }

  async #consumeSafely(info: ProducerInfo): Promise<void> {
    const transport = this.#recvTransport;
    if (!transport || !this.#wanted(info) || !this.producers.has(info.producerId)) return;
    if ([...this.consumers.values()].some((c) => c.info.producerId === info.producerId)) return;
    // Consumes now run concurrently: one in flight per producer.
    const key = `${transport.id}:${info.producerId}`;
    if (this.#consuming.has(key)) return;
    this.#consuming.add(key);
    try {
      const { consumer: params } = await this.signaling.request('consume', {
        transportId: transport.id,
        producerId: info.producerId,
        rtpCapabilities: this.#device.rtpCapabilities,
      });
      const consumer = await transport.consume(params);
      const entry = { consumer, info };
      this.consumers.set(consumer.id, entry);
      this.emit('consumerAdded', entry);
      await this.#applyLayers(entry, true);
      await this.signaling.request('resumeConsumer', { consumerId: consumer.id });
    } catch (err) {
      // not_found: the producer went away meanwhile; producerClosed/consumerClosed follow.
      if (!(err instanceof RequestFailed && err.code === 'not_found')) console.warn('consume failed', err);
    } finally {
      this.#consuming.delete(key);
    }
  }

  async #applyLayers({ consumer, info }: RemoteConsumer, fresh = false): Promise<void> {
    if (consumer.kind !== 'video' || info.source !== 'camera') return;
    // A new consumer already prefers the highest layers (the hub sets none): only 'low' costs a round trip before resume.
    if (fresh && this.receiveMode === 'full') return;
    const spatialLayer = this.receiveMode === 'low' ? 0 : 3; // 3 = the highest there is
    await this.signaling.request('setConsumerLayers', { consumerId: consumer.id, spatialLayer }).catch(() => undefined);
  }

  #dropConsumer(consumerId: string): void {
    const entry = this.consumers.get(consumerId);
    if (!entry) return;
    this.consumers.delete(consumerId);
    entry.consumer.close();
    this.emit('consumerRemoved', entry);
  }

  #closeMedia(): void {
    for (const id of [...this.consumers.keys()]) this.#dropConsumer(id);
    this.#local.closeProducers();
    this.#sendTransport?.close();
    this.#recvTransport?.close();
    this.#sendTransport = this.#recvTransport = undefined;
    this.emit('ownProducersChanged');
  }

  /** Runs setup steps one at a time: transports and consumers must not interleave. */
  #run(task: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(task).catch((err: unknown) => {
      if (this.#left) return;
      console.warn('conference step failed', err);
      const message = err instanceof Error ? err.message : String(err);
      if (!this.signaling.socket.connected) this.#setState('disconnected');
      else if (!this.#joined) this.#setState('error', message);
    });
    this.#queue = next;
    return next;
  }

  #setState(state: ConnectionState, detail?: string): void {
    this.state = state;
    this.emit('state', state, detail);
  }

  async #consumerStats() {
    const rows = [];
    for (const [consumerId, { consumer, info }] of this.consumers) {
      let framesDecoded = 0;
      let packetsReceived = 0;
      let bytesReceived = 0;
      (await consumer.getStats()).forEach((s: { type: string; framesDecoded?: number; packetsReceived?: number; bytesReceived?: number }) => {
        if (s.type !== 'inbound-rtp') return;
        framesDecoded += s.framesDecoded ?? 0;
        packetsReceived += s.packetsReceived ?? 0;
        bytesReceived += s.bytesReceived ?? 0;
      });
      rows.push({ consumerId, producerId: info.producerId, peerId: info.peerId, kind: consumer.kind, source: info.source, framesDecoded, packetsReceived, bytesReceived });
    }
    return rows;
  }
}

const SOURCES: readonly ProducerSource[] = ['camera', 'microphone', 'screen', 'ultrasound', 'device-video'];

/** The source a producer was created with (LocalMedia puts it in appData). */
function sourceOf(appData: Record<string, unknown>): ProducerSource | undefined {
  return SOURCES.find((s) => s === appData.source);
}

/**
 * A cluster hub sent the join elsewhere (draining, or past its load): open
 * this same page on that hub, the token in the fragment as links carry it
 * (docs/WEB.md), so that hub serves the page and its signaling.
 */
function followRedirect(url: string, token: string): void {
  let target: URL;
  try {
    target = new URL(`${location.pathname}${location.search}#token=${encodeURIComponent(token)}`, url);
  } catch {
    return;
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return;
  location.assign(target.href);
}
