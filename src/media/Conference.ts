import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { HoichanError, badRequest, conflict, forbidden, limitExceeded, notFound } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { ConferenceRouter } from './ConferenceRouter.js';
import type { PeerEventMap, PeerEventName, ProducerInfo, ProducerSource } from './events.js';
import { chooseVideo, type VideoChoice, type VideoPreferences } from './lastN.js';
import { Peer, type PeerProducerAppData, type PeerTransportAppData, type TransportDirection } from './Peer.js';
import { BandwidthGovernor, defaultVideoRank, type BandwidthHost } from './bandwidthGovernor.js';
import { compareWorkerLoad, type MediaWorker, type WorkerPool } from './WorkerPool.js';
import { iceConsentTimeoutSeconds } from './iceConsent.js';
import { IngestPoints, type IngestHost, type IngestLimits } from './IngestPoint.js';
import type { BroadcastEvent, RemoteMedia, RemotePeer } from './remote.js';

export interface ConferenceLimits extends IngestLimits {
  maxIncomingBitrate: number;
  initialAvailableOutgoingBitrate: number;
  /** media.bandwidthPolicy: fit each viewer's video to its downlink (default true). */
  bandwidthPolicy?: boolean;
  iceDisconnectedTimeoutMs: number;
  maxTransportsPerPeer: number;
  maxProducersPerPeer: number;
  maxConsumersPerPeer: number;
  /** People and ingests together. */
  maxPeersPerConference: number;
  /** A router with this many consumers is full: newcomers go to another router of the conference (another worker). */
  maxConsumersPerRouter: number;
  /** A router of the conference other than its only one, left with nothing on it, closes after this long (ms). */
  idleRouterCloseMs: number;
}

/** A consumer as the consume request answers it. */
export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
}

export interface ConferenceEvents {
  /** A person or an ingest joined (after the others were told). */
  peerJoined: [Peer];
  /** A peer left; peers still in when the conference closes get no peerLeft, only close. */
  peerLeft: [Peer];
  close: [];
  /** An event went to this conference's peers (the cluster forwards it to the conference's other hubs). */
  broadcast: [BroadcastEvent];
}

export interface TransportInfo {
  id: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

/** Appdata of a peer's consumer: what the viewer asked and what last-N decided. */
export interface PeerConsumerAppData extends types.AppData {
  peerId: string;
  transportId: string;
  /** The viewer asked for media (resumeConsumer); until then the consumer stays paused. */
  clientResumed?: boolean;
  /** Last-N's decision, kept here because consumer.paused lags the worker's answer. */
  forwarding?: boolean;
  /** The role last-N gave it: stage, thumbnail or off (video only). */
  role?: 'stage' | 'thumbnail' | 'off';
  /** The layers last-N last asked of the worker for it ("spatial/temporal"), so it asks again only when they change. */
  lastNLayers?: string;
  /** The layers the viewer asked for with setConsumerLayers. */
  clientLayers?: types.ConsumerLayers;
}

/** One router of a conference as /api/ops and /metrics show it. */
export interface RouterReport {
  routerId: string;
  workerSlot: number;
  peers: number;
  consumers: number;
  /** Producers of the conference's other routers piped into this one. */
  pipes: number;
}

/** The highest spatial layer a consumer may ask for; mediasoup clamps it to what the producer sends. */
const HIGHEST_LAYER = 3;

/**
 * A case conference: one mediasoup router per worker it uses, and the peers
 * on them. Every media request of the signaling contract is one method here.
 * A peer's transports live on one router (its home, chosen at join); a
 * producer reaches another router of the conference through a pipe made
 * when a consumer there first asks for it. Closing the conference closes its
 * peers and routers; a worker that dies takes only its router: the peers
 * that were on it are told what they lost and are placed again when they
 * republish.
 */
export class Conference extends EventEmitter<ConferenceEvents> {
  readonly id: string;
  readonly #pool: WorkerPool;
  readonly #limits: ConferenceLimits;
  readonly #log: Logger;
  readonly #peers = new Map<string, Peer>();
  /** Device video fed by RTP captures; each ingest is a peer with one producer. */
  readonly ingests: IngestPoints;
  /** Live routers, oldest first; at most one per worker. */
  #routers: ConferenceRouter[] = [];
  /** Each peer's router: its transports (an ingest's plain transport) live there. */
  readonly #homes = new Map<string, ConferenceRouter>();
  /** Peers placing again after their router died, so two requests at once share one placement. */
  readonly #rehoming = new Map<string, Promise<ConferenceRouter>>();
  /** The router each producer was produced on. */
  readonly #producerHomes = new Map<string, ConferenceRouter>();
  /**
   * Placements run one at a time: two joins at once must not open two
   * routers on one worker. Closing an idle router runs in the same queue, so
   * no newcomer is placed on a router being closed.
   */
  #placing: Promise<unknown> = Promise.resolve();
  /** Routers the conference may close once idle (media.idleRouterCloseMs after they were last placed on or left). */
  readonly #idleTimers = new Map<ConferenceRouter, NodeJS.Timeout>();
  /**
   * One ActiveSpeakerObserver for the conference, on its oldest router, with
   * every audio producer piped there: one dominant speaker for everyone,
   * rather than one per router to be merged.
   */
  #speaker: { at: ConferenceRouter; observer: types.ActiveSpeakerObserver } | undefined;
  /** Peer ids, the most recent dominant speaker first (last-N's thumbnails). */
  #speakers: string[] = [];
  /** Viewers' setVideoPreferences; absent: the defaults of lastN.ts. */
  readonly #preferences = new Map<string, VideoPreferences>();
  /** Placing over media.maxConsumersPerRouter: said once in the log, not per newcomer. */
  #overCap = false;
  #closed = false;
  /** Per viewer: which videos its downlink carries (docs/LINKS.md); last-N applies its answer. */
  readonly #bandwidth: BandwidthGovernor;
  /** The conference's peers and producers on other hubs (src/cluster); none on a hub alone. */
  remote: RemoteMedia | undefined;

  private constructor(id: string, pool: WorkerPool, limits: ConferenceLimits) {
    super();
    this.id = id;
    this.#pool = pool;
    this.#limits = limits;
    this.#log = createLogger('conference', { conferenceId: id });
    this.ingests = new IngestPoints(this.#ingestHost(), limits);
    this.#bandwidth = new BandwidthGovernor(this.#bandwidthHost(), { log: this.#log, enabled: limits.bandwidthPolicy !== false });
  }

  /** What the bandwidth governor sees of the conference: last-N's view of each video, and a way to re-apply it. */
  #bandwidthHost(): BandwidthHost {
    return {
      refresh: (peer) => {
        if (!peer.closed) this.#applyLastN(peer);
      },
      wanted: (consumer) => {
        const appData = consumer.appData as PeerConsumerAppData;
        return appData.clientResumed === true && appData.role !== 'off' && !consumer.producerPaused;
      },
      rank: (consumer) => {
        const appData = consumer.appData as PeerConsumerAppData;
        if (this.#preferences.has(appData.peerId)) return appData.role === 'stage' ? 'stage' : 'thumbnail';
        const owner = this.peers.find((p) => p.producers.has(consumer.producerId));
        const source = owner?.producers.get(consumer.producerId)?.appData.source ?? 'camera';
        return defaultVideoRank({ source, role: owner?.role ?? 'specialist' });
      },
    };
  }

  /** The bandwidth ladder level of a viewer (docs/LINKS.md); undefined while it receives no video. */
  bandwidthLevel(peerId: string): string | undefined {
    return this.#bandwidth.levelOf(peerId);
  }

  /** The small part of the conference its ingests see (src/media/IngestPoint.ts). */
  #ingestHost(): IngestHost {
    return {
      id: this.id,
      isClosed: () => this.#closed,
      ingestRouter: () => this.#place(),
      checkRoomForPeer: () => this.#checkRoomForPeer(),
      peerOfUser: (userId) => this.peers.find((p) => p.userId === userId),
      admit: (peer, producer, placement) => {
        const home = this.#routers.find((r) => r.router === placement.router);
        if (!home) {
          // Its router died between the transport and now: the transport closes with it.
          producer.close();
          return;
        }
        this.#homes.set(peer.id, home);
        peer.producers.set(producer.id, producer);
        this.#producerHomes.set(producer.id, home);
        producer.observer.once('close', () => this.#onProducerClosed(peer, producer));
        this.#peers.set(peer.id, peer);
        this.broadcast('peerJoined', peer.summary, peer.id);
        this.broadcast('newProducer', producerInfo(producer), peer.id);
        this.emit('peerJoined', peer);
        this.#applyLastNToAll();
      },
      remove: (peer) => this.removePeer(peer),
    };
  }

  static async create(id: string, pool: WorkerPool, limits: ConferenceLimits): Promise<Conference> {
    const conference = new Conference(id, pool, limits);
    const first = await conference.#openRouter(await pool.leastLoaded());
    conference.#log.info({ slot: first.worker.slot }, 'conference created');
    return conference;
  }

  get closed(): boolean {
    return this.#closed;
  }
  /** The worker of the conference's oldest live router. */
  get worker(): MediaWorker {
    return this.#primary().worker;
  }
  /** The conference's oldest live router (the one its active-speaker observer is on). */
  get router(): types.Router {
    return this.#primary().router;
  }
  /** Its live routers, oldest first. */
  get routers(): RouterReport[] {
    return this.#routers.map((r) => ({
      routerId: r.id,
      workerSlot: r.worker.slot,
      peers: this.peers.filter((p) => this.#homes.get(p.id) === r).length,
      consumers: r.consumers,
      pipes: r.pipes,
    }));
  }
  /** Producers piped between this conference's routers. */
  get pipes(): number {
    return this.#routers.reduce((n, r) => n + r.pipes, 0);
  }
  get peers(): Peer[] {
    return [...this.#peers.values()];
  }

  get producers(): ProducerInfo[] {
    return this.peers.flatMap((peer) => [...peer.producers.values()].map((p) => producerInfo(p)));
  }

  /** The router (and its worker) a local producer is on: where another hub's pipe consumes it (src/cluster). */
  producerRouter(producerId: string): { router: types.Router; worker: MediaWorker } | undefined {
    const home = this.#producerHomes.get(producerId);
    return home && !home.closed ? { router: home.router, worker: home.worker } : undefined;
  }

  getPeer(peerId: string): Peer | undefined {
    return this.#peers.get(peerId);
  }

  /** Which router a peer's transports are on (its worker's slot), for tests and ops. */
  homeOf(peerId: string): { routerId: string; workerSlot: number } | undefined {
    const home = this.#homes.get(peerId);
    return home && !home.closed ? { routerId: home.id, workerSlot: home.worker.slot } : undefined;
  }

  /**
   * The router `peer`'s transports go on, with `producerId` consumable there
   * (piped from its own router on first use): for consumers the hub makes on
   * transports of its own rather than a client's (the SFU bench's plain RTP
   * receivers). Such a caller puts its consumers in peer.consumers, so that
   * placement counts them.
   */
  async routerConsuming(peer: Peer, producerId: string): Promise<types.Router> {
    if (this.#peers.get(peer.id) !== peer) throw notFound(`peer ${peer.id} is not in conference ${this.id}`);
    const home = await this.#homeOf(peer);
    const source = this.#producerHomes.get(producerId);
    if (!source) throw notFound(`producer ${producerId} not found in this conference`);
    if (source !== home) await mediaCall(home.pipeFrom(source, producerId), 'the producer or a router closed');
    return home.router;
  }

  /** Every router has the same codecs (codecs.ts), so any one's capabilities are the conference's. */
  async rtpCapabilities(): Promise<types.RtpCapabilities> {
    const live = this.#routers.find((r) => !r.closed) ?? (await this.#place());
    return live.router.rtpCapabilities;
  }

  #primary(): ConferenceRouter {
    const primary = this.#routers[0];
    if (!primary) throw new HoichanError('unavailable', `conference ${this.id} has no live router right now; try again`);
    return primary;
  }

  /**
   * Where a newcomer goes. Among the conference's routers with room (fewer
   * than media.maxConsumersPerRouter consumers, counting the consumers its
   * newest peers are about to make), the one on the least-loaded worker.
   * When none has room, a new router on the least-loaded worker the
   * conference does not use yet; when it uses them all, the least-loaded of
   * its routers (over the cap: better than refusing the peer).
   */
  #place(): Promise<ConferenceRouter> {
    return this.#serially(async () => {
      const placed = await this.#choose();
      // Until the newcomer is homed there (an ingest's transport takes a few awaits), a router with
      // no peer looks idle: its idle clock starts again now. A placement that then fails (a full
      // conference, a refused ingest) leaves no router open for nothing.
      if (!this.#hasPeers(placed)) this.#armIdleClose(placed);
      return placed;
    });
  }

  /** Runs `task` in the placement queue: after every placement and router closing asked before it. */
  #serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#placing.then(task);
    this.#placing = run.catch(() => undefined);
    return run;
  }

  #hasPeers(router: ConferenceRouter): boolean {
    for (const home of this.#homes.values()) if (home === router) return true;
    return false;
  }

  /**
   * Starts (or starts again) the router's idle clock: media.idleRouterCloseMs
   * from now, it is closed if it is still idle and not the conference's only
   * router. The wait keeps a leave-and-rejoin (a reloaded page, a peer back
   * just after its reconnect grace ran out) from closing a router and
   * opening another.
   */
  #armIdleClose(router: ConferenceRouter): void {
    if (this.#closed || router.closed) return;
    clearTimeout(this.#idleTimers.get(router));
    const timer = setTimeout(() => {
      this.#idleTimers.delete(router);
      this.#serially(() => this.#closeIfIdle(router)).catch((err: Error) => {
        this.#log.warn({ slot: router.worker.slot, err: err.message }, 'could not close an idle conference router; it stays until its next peer leaves');
      });
    }, this.#limits.idleRouterCloseMs);
    timer.unref();
    this.#idleTimers.set(router, timer);
  }

  /**
   * Closes a router nothing is on any more: no peer's or ingest's transports,
   * no producer, no consumer (a pipe consumer of its own producers included).
   * The conference keeps at least one router. The active-speaker observer,
   * when it is there, moves to the oldest of the others first (every
   * microphone piped to it), so no one's dominant speaker is lost. Closing
   * the router closes the pipes into it (their other ends, the pipe
   * consumers on the routers they come from, close with them); no producer
   * of the conference closes, so nobody hears producerClosed or
   * consumerClosed. Runs in the placement queue: nobody is placed here
   * meanwhile.
   */
  async #closeIfIdle(router: ConferenceRouter): Promise<void> {
    if (this.#closed || router.closed || !this.#routers.includes(router) || this.#hasPeers(router)) return;
    for (const home of this.#producerHomes.values()) if (home === router) return;
    const others = this.#routers.filter((r) => r !== router && !r.closed);
    if (others.length === 0) return; // the only router lives as long as the conference
    if (router.consumers > 0) {
      // Consumers of producers that closed close when the worker says so: look again later.
      this.#log.debug({ slot: router.worker.slot, consumers: router.consumers }, 'idle router still has consumers; checking again later');
      this.#armIdleClose(router);
      return;
    }
    if (this.#speaker?.at === router) await this.#observeSpeakers(others[0]!);
    if (this.#closed || router.closed || this.#hasPeers(router)) return;
    this.#routers = this.#routers.filter((r) => r !== router);
    clearTimeout(this.#idleTimers.get(router));
    this.#idleTimers.delete(router);
    const pipes = router.pipes;
    router.close();
    this.#log.info({ slot: router.worker.slot, routers: this.#routers.length, pipesClosed: pipes }, 'idle conference router closed');
  }

  async #choose(): Promise<ConferenceRouter> {
    if (this.#closed) throw conflict(`conference ${this.id} is closing; join again`);
    const live = this.#routers.filter((r) => !r.closed);
    const byWorker = (a: ConferenceRouter, b: ConferenceRouter) => compareWorkerLoad(a.worker, b.worker);
    const withRoom = live.filter((r) => this.#load(r) < this.#limits.maxConsumersPerRouter).sort(byWorker);
    if (withRoom[0]) {
      this.#overCap = false;
      return withRoom[0];
    }
    const used = new Set(live.map((r) => r.worker.slot));
    const spare = this.#pool.workers.filter((w) => !used.has(w.slot)).sort(compareWorkerLoad);
    if (spare[0]) return this.#openRouter(spare[0]);
    const least = live.sort((a, b) => this.#load(a) - this.#load(b))[0];
    if (least) {
      if (!this.#overCap) {
        this.#overCap = true;
        this.#log.warn({ routers: live.length, maxConsumersPerRouter: this.#limits.maxConsumersPerRouter }, 'every router of the conference is full and it uses every worker; placing newcomers over the cap');
      }
      return least;
    }
    return this.#openRouter(await this.#pool.leastLoaded());
  }

  /** Consumers on the router, plus for each of its peers that consumes nothing yet the producers it will likely consume. */
  #load(router: ConferenceRouter): number {
    let load = router.consumers;
    const producers = this.producers.length;
    for (const peer of this.#peers.values()) {
      if (this.#homes.get(peer.id) !== router || peer.consumers.size + peer.pendingConsumes.size > 0) continue;
      load += Math.max(1, producers - peer.producers.size);
    }
    return load;
  }

  async #openRouter(worker: MediaWorker): Promise<ConferenceRouter> {
    const opened = await ConferenceRouter.open(worker, this.id);
    if (this.#closed) {
      opened.close();
      throw conflict(`conference ${this.id} is closing; join again`);
    }
    this.#routers.push(opened);
    opened.router.on('workerclose', () => this.#onRouterLost(opened));
    this.#log.info({ slot: worker.slot, routers: this.#routers.length }, 'conference router opened');
    if (!this.#speaker) await this.#observeSpeakers(opened);
    return opened;
  }

  /**
   * The worker under a router died: the router, its transports, producers,
   * consumers and pipes are gone (mediasoup closed them, and the pipes'
   * other ends on live routers). Its peers hear transportClosed and
   * producerClosed as before and are placed again at their next request; the
   * conference goes on with its other routers, or opens a new one at once
   * when that was its last.
   */
  #onRouterLost(lost: ConferenceRouter): void {
    this.#routers = this.#routers.filter((r) => r !== lost);
    clearTimeout(this.#idleTimers.get(lost));
    this.#idleTimers.delete(lost);
    if (this.#closed) return;
    for (const [peerId, home] of this.#homes) if (home === lost) this.#homes.delete(peerId);
    this.#log.warn({ slot: lost.worker.slot, routers: this.#routers.length }, 'router lost with its worker; its peers will be placed again');
    if (this.#speaker?.at === lost) this.#speaker = undefined;
    const next = this.#routers[0];
    const recover = next ? (this.#speaker ? Promise.resolve() : this.#observeSpeakers(next)) : this.#place().then(() => undefined);
    recover.catch((err: Error) => {
      if (this.#closed) return;
      this.#log.error({ err: err.message }, 'could not recover from a lost router; closing the conference');
      this.close();
    });
  }

  /** The dominant speaker among audio producers, announced as activeSpeaker (a documented extension). */
  async #observeSpeakers(at: ConferenceRouter): Promise<void> {
    const observer = await at.router.createActiveSpeakerObserver({ interval: 300 });
    this.#speaker = { at, observer };
    observer.on('dominantspeaker', ({ producer }) => {
      const peerId = (producer.appData as { peerId?: string }).peerId;
      if (!peerId || !this.#peers.has(peerId)) return;
      this.#speakers = [peerId, ...this.#speakers.filter((id) => id !== peerId)];
      this.broadcast('activeSpeaker', { peerId, producerId: producer.id });
      this.#applyLastNToAll();
    });
    // After a lost router: the audio producers that outlived it join the new observer.
    for (const peer of this.#peers.values()) {
      for (const producer of peer.producers.values()) if (producer.kind === 'audio') void this.#listenTo(producer.id);
    }
  }

  /** Adds an audio producer to the speaker observer, piping it to the observer's router first. */
  async #listenTo(producerId: string): Promise<void> {
    const speaker = this.#speaker;
    const source = this.#producerHomes.get(producerId);
    if (!speaker || !source || speaker.at.closed || source.closed) return;
    try {
      if (source !== speaker.at) await speaker.at.pipeFrom(source, producerId);
      await speaker.observer.addProducer({ producerId });
    } catch (err) {
      // The producer closed meanwhile, or a router did: nothing to listen to.
      this.#log.debug({ producerId, err: (err as Error).message }, 'audio producer not added to the speaker observer');
    }
  }

  /** Adds a peer and tells the others. Returns what the newcomer needs to start. */
  async addPeer(peer: Peer): Promise<{ routerRtpCapabilities: types.RtpCapabilities; peers: Peer[]; producers: ProducerInfo[]; remotePeers: RemotePeer[] }> {
    if (this.#closed) throw conflict(`conference ${this.id} is closing; join again`);
    this.#checkRoomForPeer();
    const home = await this.#place();
    if (this.#closed) throw conflict(`conference ${this.id} is closing; join again`);
    this.#checkRoomForPeer();
    const routerRtpCapabilities = home.router.rtpCapabilities;
    const others = this.peers;
    const producers = [...this.producers, ...(this.remote?.producers() ?? [])];
    this.#peers.set(peer.id, peer);
    this.#homes.set(peer.id, home);
    this.broadcast('peerJoined', peer.summary, peer.id);
    this.#log.info({ peerId: peer.id, role: peer.role, peers: this.#peers.size, slot: home.worker.slot }, 'peer joined');
    this.emit('peerJoined', peer);
    return { routerRtpCapabilities, peers: others, producers, remotePeers: this.remote?.peers() ?? [] };
  }

  /** A conference made for a request that then failed (an ingest refused) must not linger without peers. */
  closeIfEmpty(): void {
    if (this.#peers.size === 0 && this.ingests.opening === 0) this.close();
  }

  #checkRoomForPeer(): void {
    if (this.#peers.size + this.ingests.opening >= this.#limits.maxPeersPerConference) {
      throw limitExceeded(`conference ${this.id} is full: at most ${this.#limits.maxPeersPerConference} peers (media.maxPeersPerConference)`);
    }
  }

  /** Closes everything the peer owns, tells the others, and closes the conference when it was the last. */
  removePeer(peer: Peer): void {
    if (this.#peers.get(peer.id) !== peer) return;
    const home = this.#homes.get(peer.id);
    this.#peers.delete(peer.id);
    this.#homes.delete(peer.id);
    this.#preferences.delete(peer.id);
    this.#speakers = this.#speakers.filter((id) => id !== peer.id);
    this.ingests.closePeer(peer.id);
    peer.close();
    this.broadcast('peerLeft', { peerId: peer.id });
    this.#log.info({ peerId: peer.id, peers: this.#peers.size }, 'peer left');
    this.emit('peerLeft', peer);
    if (this.#peers.size === 0) this.close();
    // The last one off a router that is not the conference's only one: it closes if nobody comes soon.
    else if (home && !this.#hasPeers(home)) this.#armIdleClose(home);
  }

  broadcast<E extends PeerEventName>(event: E, data: PeerEventMap[E], exceptPeerId?: string): void {
    for (const peer of this.#peers.values()) if (peer.id !== exceptPeerId) peer.notify(event, data);
    this.emit('broadcast', { event, data } as BroadcastEvent);
  }

  async createWebRtcTransport(peer: Peer, direction: TransportDirection): Promise<TransportInfo> {
    if (peer.transports.size + peer.pendingTransports >= this.#limits.maxTransportsPerPeer) {
      throw conflict(`a peer may hold at most ${this.#limits.maxTransportsPerPeer} transports`);
    }
    peer.pendingTransports++;
    let transport: types.WebRtcTransport<PeerTransportAppData>;
    try {
      const home = await this.#homeOf(peer);
      transport = (await mediaCall(
        home.router.createWebRtcTransport({
          webRtcServer: home.worker.webRtcServer,
          enableUdp: true,
          enableTcp: true,
          preferUdp: true,
          iceConsentTimeout: iceConsentTimeoutSeconds(this.#limits.iceDisconnectedTimeoutMs),
          initialAvailableOutgoingBitrate: this.#limits.initialAvailableOutgoingBitrate,
          appData: { peerId: peer.id, direction },
        }),
        'the conference closed',
      )) as types.WebRtcTransport<PeerTransportAppData>;
    } finally {
      peer.pendingTransports--;
    }
    if (peer.closed) {
      transport.close();
      throw conflict('peer left while its transport was being created');
    }
    if (direction === 'send') {
      await transport.setMaxIncomingBitrate(this.#limits.maxIncomingBitrate).catch(() => undefined);
    }
    peer.transports.set(transport.id, transport);
    this.#watchTransport(peer, transport);
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
  }

  async connectTransport(peer: Peer, transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    const transport = this.#transport(peer, transportId);
    if (transport.appData.connected) throw conflict(`transport ${transportId} is already connected`);
    transport.appData.connected = true;
    try {
      await transport.connect({ dtlsParameters });
    } catch (err) {
      transport.appData.connected = false;
      throw badRequest(`dtlsParameters: ${(err as Error).message}`);
    }
  }

  async restartIce(peer: Peer, transportId: string): Promise<types.IceParameters> {
    return mediaCall(this.#transport(peer, transportId).restartIce(), 'the transport closed');
  }

  async produce(
    peer: Peer,
    request: { transportId: string; kind: types.MediaKind; rtpParameters: types.RtpParameters; source?: ProducerSource | undefined },
  ): Promise<string> {
    const transport = this.#transport(peer, request.transportId);
    if (transport.appData.direction !== 'send') throw badRequest(`transportId: transport ${transport.id} is not a send transport`);
    const source = request.source ?? (request.kind === 'audio' ? 'microphone' : 'camera');
    if (source === 'microphone' && request.kind !== 'audio') throw badRequest('source: microphone must be an audio producer');
    if (source !== 'microphone' && source !== 'screen' && request.kind === 'audio') {
      throw badRequest(`source: ${source} must be a video producer`);
    }
    if (peer.producers.size >= this.#limits.maxProducersPerPeer) {
      throw conflict(`a peer may hold at most ${this.#limits.maxProducersPerPeer} producers`);
    }
    for (const existing of peer.producers.values()) {
      if (existing.appData.source === source && existing.kind === request.kind) {
        throw conflict(`this peer already sends ${request.kind} from source ${source} (producer ${existing.id})`);
      }
    }
    let producer: types.Producer<PeerProducerAppData>;
    try {
      producer = (await transport.produce({
        kind: request.kind,
        rtpParameters: request.rtpParameters,
        appData: { peerId: peer.id, source },
      })) as types.Producer<PeerProducerAppData>;
    } catch (err) {
      throw badRequest(`rtpParameters: ${(err as Error).message}`);
    }
    const home = this.#homes.get(peer.id);
    if (!home || home.closed || producer.closed) {
      producer.close();
      throw conflict('the transport closed while the request ran');
    }
    peer.producers.set(producer.id, producer);
    this.#producerHomes.set(producer.id, home);
    producer.observer.once('close', () => this.#onProducerClosed(peer, producer));
    if (producer.kind === 'audio') await this.#listenTo(producer.id);
    this.broadcast('newProducer', producerInfo(producer), peer.id);
    if (producer.kind === 'video') this.#applyLastNToAll();
    return producer.id;
  }

  /**
   * One consumer per producer per peer: asking again for a producer this peer
   * already consumes (or is consuming) on the same transport answers that same
   * consumer, so a retried request is harmless; on another transport it is a
   * conflict. At most maxConsumersPerPeer consumers.
   */
  async consume(
    peer: Peer,
    request: { transportId: string; producerId: string; rtpCapabilities: types.RtpCapabilities },
  ): Promise<ConsumerInfo> {
    const transport = this.#transport(peer, request.transportId);
    if (transport.appData.direction !== 'recv') throw badRequest(`transportId: transport ${transport.id} is not a recv transport`);
    const owner = this.peers.find((p) => p.producers.has(request.producerId));
    // A producer on another hub of the conference is piped to this peer's router first (src/cluster).
    const remote = owner ? undefined : this.remote?.producer(request.producerId);
    if (!owner && !remote) throw notFound(`producer ${request.producerId} not found in this conference`);
    if (owner === peer) throw badRequest('producerId: a peer cannot consume its own producer');
    const existing = [...peer.consumers.values()].find((c) => c.producerId === request.producerId);
    const pending = peer.pendingConsumes.get(request.producerId);
    if (existing || pending) {
      const onTransport = existing ? (existing.appData as { transportId?: string }).transportId : pending!.transportId;
      if (onTransport !== transport.id) {
        throw conflict(`this peer already consumes producer ${request.producerId} on transport ${onTransport}`);
      }
      return consumerInfo(existing ?? (await pending!.consumer));
    }
    if (peer.consumers.size + peer.pendingConsumes.size >= this.#limits.maxConsumersPerPeer) {
      throw limitExceeded(`a peer may hold at most ${this.#limits.maxConsumersPerPeer} consumers (signaling.maxConsumersPerPeer)`);
    }
    const source = remote ? undefined : this.#producerHomes.get(request.producerId);
    const home = this.#homes.get(peer.id);
    if ((!remote && (!source || source.closed)) || !home || home.closed) throw conflict('the producer or this peer\'s router closed while the request ran');
    if (source && !source.router.canConsume({ producerId: request.producerId, rtpCapabilities: request.rtpCapabilities })) {
      throw badRequest(`rtpCapabilities: cannot consume producer ${request.producerId} with these capabilities`);
    }
    // Registered before the first await, so a concurrent request for this producer finds it.
    const created = (async () => {
      // The first consumer of this producer on this peer's router pipes it here; later ones share the pipe.
      if (source && source !== home) await mediaCall(home.pipeFrom(source, request.producerId), 'the producer or a router closed');
      if (remote) {
        // From another hub (src/cluster): once per router, then checked like a local one.
        await this.remote!.pipe(request.producerId, home.router, home.worker);
        if (!home.router.canConsume({ producerId: request.producerId, rtpCapabilities: request.rtpCapabilities })) {
          throw badRequest(`rtpCapabilities: cannot consume producer ${request.producerId} with these capabilities`);
        }
      }
      const appData: PeerConsumerAppData = { peerId: peer.id, transportId: transport.id };
      return mediaCall(
        transport.consume({ producerId: request.producerId, rtpCapabilities: request.rtpCapabilities, paused: true, appData }),
        'the transport or the producer closed',
      );
    })();
    peer.pendingConsumes.set(request.producerId, { transportId: transport.id, consumer: created });
    let consumer: types.Consumer;
    try {
      consumer = await created;
    } finally {
      peer.pendingConsumes.delete(request.producerId);
    }
    if (peer.closed || consumer.closed) {
      consumer.close();
      throw conflict('peer or transport closed while its consumer was being created');
    }
    peer.consumers.set(consumer.id, consumer);
    this.#bandwidth.add(peer, transport, consumer);
    consumer.observer.once('close', () => {
      peer.consumers.delete(consumer.id);
      peer.notify('consumerClosed', { consumerId: consumer.id, producerId: consumer.producerId });
    });
    return consumerInfo(consumer);
  }

  /**
   * The viewer is ready for media. Audio resumes; video resumes only if
   * last-N forwards it to this viewer now (else it stays paused on the hub
   * until it does).
   */
  async resumeConsumer(peer: Peer, consumerId: string): Promise<void> {
    const consumer = this.#consumer(peer, consumerId);
    const appData = consumer.appData as PeerConsumerAppData;
    appData.clientResumed = true;
    if (consumer.kind === 'audio') {
      appData.forwarding = true;
      await mediaCall(consumer.resume(), 'the consumer closed');
      return;
    }
    // Answered once the worker has resumed it (or kept it paused), as for audio.
    await this.#applyLastN(peer).changes.get(consumerId);
    // Held back for bandwidth: the viewer hears why, again (docs/LINKS.md).
    this.#bandwidth.remind(peer, consumer);
  }

  /**
   * What the viewer shows (last-N): the producers on its stage and how many
   * thumbnails. Applied at once and again whenever the dominant speaker or
   * the producers change.
   */
  setVideoPreferences(peer: Peer, preferences: VideoPreferences): { stage: string[]; thumbnails: string[] } {
    this.#preferences.set(peer.id, { onStage: [...preferences.onStage], thumbnails: preferences.thumbnails });
    const { choice } = this.#applyLastN(peer);
    return { stage: [...choice.stage], thumbnails: [...choice.thumbnails] };
  }

  #applyLastNToAll(): void {
    const video = this.#videoProducers();
    for (const peer of this.#peers.values()) if (peer.consumers.size > 0) this.#applyLastN(peer, video);
  }

  /** Another hub's producers of this conference changed (src/cluster): last-N chooses again. */
  remoteProducersChanged(): void {
    if (!this.#closed) this.#applyLastNToAll();
  }

  #videoProducers(): ProducerInfo[] {
    // Another hub's video competes for a viewer's stage like a local one (src/cluster).
    return [...this.producers, ...(this.remote?.producers() ?? [])].filter((p) => p.kind === 'video');
  }

  /**
   * Pauses on the hub (no packets leave the worker) every video consumer of
   * the viewer that last-N does not forward, resumes those it does once the
   * viewer asked for them, and, for a viewer that said what it shows, gives
   * stage consumers the highest simulcast layer and thumbnails the lowest.
   */
  #applyLastN(peer: Peer, video = this.#videoProducers()): { choice: VideoChoice; changes: Map<string, Promise<void>> } {
    const changes = new Map<string, Promise<void>>();
    const preferences = this.#preferences.get(peer.id);
    const choice = chooseVideo(peer.id, preferences, video, this.#speakers);
    for (const consumer of peer.consumers.values()) {
      if (consumer.kind !== 'video' || consumer.closed) continue;
      const appData = consumer.appData as PeerConsumerAppData;
      const role = choice.stage.has(consumer.producerId) ? 'stage' : choice.thumbnails.has(consumer.producerId) ? 'thumbnail' : 'off';
      const forward = role !== 'off' && appData.clientResumed === true && !this.#bandwidth.isSuspended(consumer.id);
      const layered = consumer.type === 'simulcast' || consumer.type === 'svc';
      if (layered && role !== 'off') {
        // What last-N (or the viewer) wants, under the bandwidth cap. Asked again whenever it differs
        // from what was last asked, not only when the role changes: a thumbnail of a viewer that
        // said nothing yet runs at the viewer's layer, and must drop to the lowest once it does.
        // Asked before the resume below: the worker handles them in order, so a thumbnail coming
        // back starts at its lowest layer rather than with a keyframe of the highest.
        const cap = this.#bandwidth.layerCap(consumer.id);
        const wish = preferences ? { spatialLayer: role === 'stage' ? HIGHEST_LAYER : 0 } : (appData.clientLayers ?? { spatialLayer: HIGHEST_LAYER });
        const layers = { ...wish, spatialLayer: Math.min(wish.spatialLayer, cap ?? HIGHEST_LAYER) };
        const key = `${layers.spatialLayer}/${layers.temporalLayer ?? ''}`;
        if (key !== appData.lastNLayers) {
          appData.lastNLayers = key;
          consumer.setPreferredLayers(layers).catch(() => undefined);
        }
      }
      if (forward !== (appData.forwarding ?? false)) {
        appData.forwarding = forward;
        // A consumer closing meanwhile is no error: it has nothing left to forward.
        changes.set(consumer.id, (forward ? consumer.resume() : consumer.pause()).catch(() => undefined));
      }
      appData.role = role;
    }
    return { choice, changes };
  }

  async setConsumerLayers(peer: Peer, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const consumer = this.#consumer(peer, consumerId);
    if (consumer.kind !== 'video') throw badRequest(`consumerId: consumer ${consumerId} is not video`);
    const layers = temporalLayer === undefined ? { spatialLayer } : { spatialLayer, temporalLayer };
    (consumer.appData as PeerConsumerAppData).clientLayers = layers;
    // Kept as the viewer's wish; while its downlink is thin the bandwidth cap applies (docs/LINKS.md).
    const cap = this.#bandwidth.layerCap(consumer.id);
    await mediaCall(consumer.setPreferredLayers({ ...layers, spatialLayer: Math.min(spatialLayer, cap ?? spatialLayer) }), 'the consumer closed');
  }

  async pauseProducer(peer: Peer, producerId: string): Promise<void> {
    await mediaCall(this.#ownProducer(peer, producerId).pause(), 'the producer closed');
  }

  async resumeProducer(peer: Peer, producerId: string): Promise<void> {
    await mediaCall(this.#ownProducer(peer, producerId).resume(), 'the producer closed');
  }

  closeProducer(peer: Peer, producerId: string): void {
    const producer = this.#ownProducer(peer, producerId);
    peer.closingByRequest.add(producer.id);
    producer.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#idleTimers.values()) clearTimeout(timer);
    this.#idleTimers.clear();
    this.#bandwidth.close();
    for (const peer of this.#peers.values()) peer.close();
    this.#peers.clear();
    this.ingests.closeAll();
    for (const router of this.#routers) router.close();
    this.#routers = [];
    this.#log.info('conference closed');
    this.emit('close');
  }

  // Objects of another peer of this conference answer forbidden; ids unknown
  // here (another conference's included) answer not_found, so a peer learns
  // nothing about conferences it cannot see.
  #transport(peer: Peer, transportId: string): types.WebRtcTransport<PeerTransportAppData> {
    const transport = peer.transports.get(transportId);
    if (transport) return transport;
    if (this.peers.some((p) => p.transports.has(transportId))) throw forbidden(`transport ${transportId} belongs to another peer`);
    throw notFound(`transport ${transportId} not found`);
  }

  #consumer(peer: Peer, consumerId: string): types.Consumer {
    const consumer = peer.consumers.get(consumerId);
    if (consumer) return consumer;
    if (this.peers.some((p) => p.consumers.has(consumerId))) throw forbidden(`consumer ${consumerId} belongs to another peer`);
    throw notFound(`consumer ${consumerId} not found`);
  }

  #ownProducer(peer: Peer, producerId: string): types.Producer<PeerProducerAppData> {
    const producer = peer.producers.get(producerId);
    if (producer) return producer;
    if (this.peers.some((p) => p.producers.has(producerId))) throw forbidden(`producer ${producerId} belongs to another peer`);
    throw notFound(`producer ${producerId} not found`);
  }

  #onProducerClosed(peer: Peer, producer: types.Producer<PeerProducerAppData>): void {
    peer.producers.delete(producer.id);
    this.#producerHomes.delete(producer.id);
    const requested = peer.closingByRequest.delete(producer.id);
    // The owner hears about it too unless it asked: after a worker death it must republish.
    this.broadcast('producerClosed', { producerId: producer.id }, requested || peer.closed ? peer.id : undefined);
    // A thumbnail or the stage may have been this producer's: others move up.
    if (producer.kind === 'video') this.#applyLastNToAll();
  }

  /**
   * A browser whose network vanished stops its ICE consent checks (RFC 7675);
   * after iceConsentTimeout the worker moves ICE to 'disconnected', and ICE
   * staying disconnected for iceDisconnectedTimeoutMs closes the transport:
   * within 30 s in all (iceConsentTimeoutSeconds). DTLS failure or close
   * closes it at once. Either way its owner is told.
   */
  #watchTransport(peer: Peer, transport: types.WebRtcTransport<PeerTransportAppData>): void {
    let iceTimer: NodeJS.Timeout | undefined;
    let reason = 'router closed';
    const closeFor = (why: string) => {
      reason = why;
      transport.close();
    };
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') closeFor(`dtls ${state}`);
    });
    transport.on('icestatechange', (state) => {
      clearTimeout(iceTimer);
      if (state === 'disconnected') {
        iceTimer = setTimeout(() => closeFor('ice disconnected'), this.#limits.iceDisconnectedTimeoutMs);
      }
    });
    transport.observer.once('close', () => {
      clearTimeout(iceTimer);
      peer.transports.delete(transport.id);
      if (!peer.closed) {
        this.#log.info({ peerId: peer.id, transportId: transport.id, reason }, 'transport closed by hub');
        peer.notify('transportClosed', { transportId: transport.id, reason });
      }
    });
  }

  /** The peer's router; a peer whose router died is placed again (its next transport goes there). */
  async #homeOf(peer: Peer): Promise<ConferenceRouter> {
    const home = this.#homes.get(peer.id);
    if (home && !home.closed) return home;
    let rehoming = this.#rehoming.get(peer.id);
    if (!rehoming) {
      rehoming = this.#place().then((placed) => {
        if (this.#peers.get(peer.id) === peer) this.#homes.set(peer.id, placed);
        return placed;
      });
      this.#rehoming.set(peer.id, rehoming);
      void rehoming.finally(() => this.#rehoming.delete(peer.id)).catch(() => undefined);
    }
    return rehoming;
  }
}

/**
 * A request to the worker about an object that closed while it ran (a leave,
 * the last peer leaving, a transport timing out) fails in mediasoup as
 * "Channel request handler ... not found" or an InvalidStateError. That is a
 * race the caller lost, not a hub fault: answer conflict, not internal.
 * (Found by the signaling fuzz test.)
 */
async function mediaCall<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const e = err as Error;
    if (e.name === 'InvalidStateError' || /request handler with ID .* not found|closed/i.test(e.message)) {
      throw conflict(`${what} while the request ran`);
    }
    throw err;
  }
}

function consumerInfo(consumer: types.Consumer): ConsumerInfo {
  return { id: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters };
}

function producerInfo(producer: types.Producer<PeerProducerAppData>): ProducerInfo {
  return { producerId: producer.id, peerId: producer.appData.peerId, kind: producer.kind, source: producer.appData.source };
}
