import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { badRequest, conflict, forbidden, limitExceeded, notFound } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { mediaCodecs } from './codecs.js';
import type { PeerEventMap, PeerEventName, ProducerInfo, ProducerSource } from './events.js';
import { Peer, type PeerProducerAppData, type PeerTransportAppData, type TransportDirection } from './Peer.js';
import type { MediaWorker, WorkerPool } from './WorkerPool.js';
import { iceConsentTimeoutSeconds } from './iceConsent.js';
import { IngestPoints, type IngestHost, type IngestLimits } from './IngestPoint.js';

export interface ConferenceLimits extends IngestLimits {
  maxIncomingBitrate: number;
  initialAvailableOutgoingBitrate: number;
  iceDisconnectedTimeoutMs: number;
  maxTransportsPerPeer: number;
  maxProducersPerPeer: number;
  maxConsumersPerPeer: number;
  /** People and ingests together. */
  maxPeersPerConference: number;
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
}

export interface TransportInfo {
  id: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

/**
 * A case conference: one mediasoup router and the peers on it. Every media
 * request of the signaling contract is one method here. Closing the conference
 * closes its peers and router; if the router's worker dies, the conference
 * moves to a live worker and the peers are told what they lost.
 */
export class Conference extends EventEmitter<ConferenceEvents> {
  readonly id: string;
  readonly #pool: WorkerPool;
  readonly #limits: ConferenceLimits;
  readonly #log: Logger;
  readonly #peers = new Map<string, Peer>();
  /** Device video fed by RTP captures; each ingest is a peer with one producer. */
  readonly ingests: IngestPoints;
  #worker: MediaWorker;
  #router: types.Router;
  #speakerObserver: types.ActiveSpeakerObserver | undefined;
  /** Resolves to the current router; replaced while moving to a new worker. */
  #routerReady: Promise<types.Router>;
  #closed = false;

  private constructor(id: string, pool: WorkerPool, limits: ConferenceLimits, worker: MediaWorker, router: types.Router) {
    super();
    this.id = id;
    this.#pool = pool;
    this.#limits = limits;
    this.#log = createLogger('conference', { conferenceId: id });
    this.#worker = worker;
    this.#router = router;
    this.#routerReady = Promise.resolve(router);
    this.#watchRouter(router);
    this.ingests = new IngestPoints(this.#ingestHost(), limits);
  }

  /** The small part of the conference its ingests see (src/media/IngestPoint.ts). */
  #ingestHost(): IngestHost {
    return {
      id: this.id,
      isClosed: () => this.#closed,
      ingestRouter: async () => {
        const router = await this.#routerReady;
        return { router, worker: this.#worker };
      },
      checkRoomForPeer: () => this.#checkRoomForPeer(),
      peerOfUser: (userId) => this.peers.find((p) => p.userId === userId),
      admit: (peer, producer) => {
        peer.producers.set(producer.id, producer);
        producer.observer.once('close', () => this.#onProducerClosed(peer, producer));
        this.#peers.set(peer.id, peer);
        this.broadcast('peerJoined', peer.summary, peer.id);
        this.broadcast('newProducer', producerInfo(producer), peer.id);
        this.emit('peerJoined', peer);
      },
      remove: (peer) => this.removePeer(peer),
    };
  }

  /** The dominant speaker among audio producers, announced as activeSpeaker (a documented extension). */
  async #observeSpeakers(router: types.Router): Promise<void> {
    const observer = await router.createActiveSpeakerObserver({ interval: 300 });
    this.#speakerObserver = observer;
    observer.on('dominantspeaker', ({ producer }) => {
      const peerId = (producer.appData as { peerId?: string }).peerId;
      if (peerId) this.broadcast('activeSpeaker', { peerId, producerId: producer.id });
    });
  }

  static async create(id: string, pool: WorkerPool, limits: ConferenceLimits): Promise<Conference> {
    const worker = await pool.leastLoaded();
    const router = await worker.worker.createRouter({ mediaCodecs, appData: { conferenceId: id } });
    const conference = new Conference(id, pool, limits, worker, router);
    await conference.#observeSpeakers(router);
    conference.#log.info({ slot: worker.slot }, 'conference created');
    return conference;
  }

  get closed(): boolean {
    return this.#closed;
  }
  get worker(): MediaWorker {
    return this.#worker;
  }
  get router(): types.Router {
    return this.#router;
  }
  get peers(): Peer[] {
    return [...this.#peers.values()];
  }

  get producers(): ProducerInfo[] {
    return this.peers.flatMap((peer) => [...peer.producers.values()].map((p) => producerInfo(p)));
  }

  getPeer(peerId: string): Peer | undefined {
    return this.#peers.get(peerId);
  }

  async rtpCapabilities(): Promise<types.RtpCapabilities> {
    return (await this.#routerReady).rtpCapabilities;
  }

  /** Adds a peer and tells the others. Returns what the newcomer needs to start. */
  async addPeer(peer: Peer): Promise<{ routerRtpCapabilities: types.RtpCapabilities; peers: Peer[]; producers: ProducerInfo[] }> {
    if (this.#closed) throw conflict(`conference ${this.id} is closing; join again`);
    this.#checkRoomForPeer();
    const routerRtpCapabilities = await this.rtpCapabilities();
    if (this.#closed) throw conflict(`conference ${this.id} is closing; join again`);
    this.#checkRoomForPeer();
    const others = this.peers;
    const producers = this.producers;
    this.#peers.set(peer.id, peer);
    this.broadcast('peerJoined', peer.summary, peer.id);
    this.#log.info({ peerId: peer.id, role: peer.role, peers: this.#peers.size }, 'peer joined');
    this.emit('peerJoined', peer);
    return { routerRtpCapabilities, peers: others, producers };
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
    this.#peers.delete(peer.id);
    this.ingests.closePeer(peer.id);
    peer.close();
    this.broadcast('peerLeft', { peerId: peer.id });
    this.#log.info({ peerId: peer.id, peers: this.#peers.size }, 'peer left');
    this.emit('peerLeft', peer);
    if (this.#peers.size === 0) this.close();
  }

  broadcast<E extends PeerEventName>(event: E, data: PeerEventMap[E], exceptPeerId?: string): void {
    for (const peer of this.#peers.values()) if (peer.id !== exceptPeerId) peer.notify(event, data);
  }

  async createWebRtcTransport(peer: Peer, direction: TransportDirection): Promise<TransportInfo> {
    if (peer.transports.size + peer.pendingTransports >= this.#limits.maxTransportsPerPeer) {
      throw conflict(`a peer may hold at most ${this.#limits.maxTransportsPerPeer} transports`);
    }
    peer.pendingTransports++;
    let transport: types.WebRtcTransport<PeerTransportAppData>;
    try {
      const router = await this.#routerReady;
      transport = (await mediaCall(
        router.createWebRtcTransport({
          webRtcServer: this.#worker.webRtcServer,
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
    peer.producers.set(producer.id, producer);
    producer.observer.once('close', () => this.#onProducerClosed(peer, producer));
    if (producer.kind === 'audio') await this.#speakerObserver?.addProducer({ producerId: producer.id }).catch(() => undefined);
    this.broadcast('newProducer', producerInfo(producer), peer.id);
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
    if (!owner) throw notFound(`producer ${request.producerId} not found in this conference`);
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
    // Registered before the first await, so a concurrent request for this producer finds it.
    const created = this.#routerReady.then((router) => {
      if (!router.canConsume({ producerId: request.producerId, rtpCapabilities: request.rtpCapabilities })) {
        throw badRequest(`rtpCapabilities: cannot consume producer ${request.producerId} with these capabilities`);
      }
      return mediaCall(
        transport.consume({
          producerId: request.producerId,
          rtpCapabilities: request.rtpCapabilities,
          paused: true,
          appData: { peerId: peer.id, transportId: transport.id },
        }),
        'the transport or the producer closed',
      );
    });
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
    consumer.observer.once('close', () => {
      peer.consumers.delete(consumer.id);
      peer.notify('consumerClosed', { consumerId: consumer.id, producerId: consumer.producerId });
    });
    return consumerInfo(consumer);
  }

  async resumeConsumer(peer: Peer, consumerId: string): Promise<void> {
    await mediaCall(this.#consumer(peer, consumerId).resume(), 'the consumer closed');
  }

  async setConsumerLayers(peer: Peer, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const consumer = this.#consumer(peer, consumerId);
    if (consumer.kind !== 'video') throw badRequest(`consumerId: consumer ${consumerId} is not video`);
    await mediaCall(consumer.setPreferredLayers(temporalLayer === undefined ? { spatialLayer } : { spatialLayer, temporalLayer }), 'the consumer closed');
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
    for (const peer of this.#peers.values()) peer.close();
    this.#peers.clear();
    this.ingests.closeAll();
    this.#router.close();
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
    const requested = peer.closingByRequest.delete(producer.id);
    // The owner hears about it too unless it asked: after a worker death it must republish.
    this.broadcast('producerClosed', { producerId: producer.id }, requested || peer.closed ? peer.id : undefined);
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

  #watchRouter(router: types.Router): void {
    router.on('workerclose', () => {
      if (this.#closed) return;
      this.#log.warn({ slot: this.#worker.slot }, 'router lost with its worker; moving the conference');
      this.#routerReady = this.#moveToLiveWorker();
      this.#routerReady.catch((err: Error) => {
        this.#log.error({ err: err.message }, 'could not move the conference to a live worker; closing it');
        this.close();
      });
    });
  }

  async #moveToLiveWorker(): Promise<types.Router> {
    const worker = await this.#pool.leastLoaded();
    const router = await worker.worker.createRouter({ mediaCodecs, appData: { conferenceId: this.id } });
    if (this.#closed) {
      router.close();
      throw new Error('conference closed while moving');
    }
    this.#worker = worker;
    this.#router = router;
    this.#watchRouter(router);
    await this.#observeSpeakers(router);
    this.#log.info({ slot: worker.slot }, 'conference moved to a live worker');
    return router;
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
