import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { HoichanError, badRequest, conflict, forbidden, limitExceeded, notFound } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { mediaCodecs } from './codecs.js';
import type { PeerEventMap, PeerEventName, ProducerInfo, ProducerSource } from './events.js';
import { Peer, type PeerProducerAppData, type PeerTransportAppData, type TransportDirection } from './Peer.js';
import type { MediaWorker, WorkerPool } from './WorkerPool.js';
import { ingestListenInfos, reachableAddress } from './addresses.js';
import { iceConsentTimeoutSeconds } from './iceConsent.js';
import { ingestPayloadType, ingestRtpParameters, randomSrtpKey, randomSsrc, type IngestInfo, type IngestRequest } from './ingest.js';

export interface ConferenceLimits {
  /** Where plain (ingest) transports listen, and the address announced to senders. */
  listenIp: string;
  announcedIp: string | null;
  /** An ingest that receives nothing for this long is closed (the capture stopped or moved). */
  ingestIdleTimeoutMs: number;
  maxIncomingBitrate: number;
  initialAvailableOutgoingBitrate: number;
  iceDisconnectedTimeoutMs: number;
  maxTransportsPerPeer: number;
  maxProducersPerPeer: number;
  maxConsumersPerPeer: number;
  /** People and ingests together. */
  maxPeersPerConference: number;
  maxIngestsPerConference: number;
}

/** What the conference keeps of an ingest: its transport and who opened it (token `sub`). */
interface IngestEntry {
  transport: types.PlainTransport;
  owner: string;
}

/** A consumer as the consume request answers it. */
export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
}

export interface ConferenceEvents {
  close: [];
  /** The conference moved to a new router after its worker died. */
  recovered: [MediaWorker];
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
  readonly #ingests = new Map<string, IngestEntry>();
  /** Device ids of ingests being opened: counted against the caps and the one-ingest-per-device rule. */
  readonly #openingIngests = new Set<string>();
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
    return { routerRtpCapabilities, peers: others, producers };
  }

  /**
   * Opens an RTP ingest: a device (ultrasound, device video) becomes a peer
   * of the conference whose one producer is fed by a capture sending RTP to a
   * comedia PlainTransport. Viewers see peerJoined and newProducer as for any
   * site. The ingest closes when asked, when the conference closes, or after
   * ingestIdleTimeoutMs without RTP.
   */
  async createIngest(request: IngestRequest, owner: string): Promise<IngestInfo> {
    if (this.#closed) throw conflict(`conference ${this.id} is closing`);
    const duplicate = this.peers.find((p) => p.userId === `ingest:${request.deviceId}`);
    if (duplicate || this.#openingIngests.has(request.deviceId)) {
      throw conflict(`device ${request.deviceId} already has an ingest${duplicate ? ` (${duplicate.id})` : ''}; close it first`);
    }
    if (this.#ingests.size + this.#openingIngests.size >= this.#limits.maxIngestsPerConference) {
      throw limitExceeded(`a conference may hold at most ${this.#limits.maxIngestsPerConference} ingests (media.maxIngestsPerConference)`);
    }
    this.#checkRoomForPeer();
    // Reserved until the ingest is a peer or has failed, so concurrent requests count it.
    this.#openingIngests.add(request.deviceId);
    try {
      return await this.#openIngest(request, owner);
    } finally {
      this.#openingIngests.delete(request.deviceId);
    }
  }

  async #openIngest(request: IngestRequest, owner: string): Promise<IngestInfo> {
    let transport: types.PlainTransport;
    try {
      const router = await this.#routerReady;
      transport = await router.createPlainTransport({
        ...ingestListenInfos(this.#limits.listenIp, this.#limits.announcedIp, { min: this.#worker.rtcMinPort, max: this.#worker.rtcMaxPort }),
        // ffmpeg sends RTCP from another source port than RTP; with rtcp-mux,
        // comedia would pin the first (RTCP) address and drop all the RTP.
        rtcpMux: false,
        comedia: true,
        enableSrtp: request.srtp,
        srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80',
      });
    } catch (err) {
      // The worker's slice of media.rtcMinPort-rtcMaxPort is used up: the hub's state, not the caller's fault.
      if (/no more available ports/i.test((err as Error).message)) {
        this.#log.error({ deviceId: request.deviceId, ingests: this.#ingests.size }, "ingest refused: no free port in the worker's RTC port range");
        throw new HoichanError('unavailable', 'no free media port for an ingest on this hub; try again later (operators: widen media.rtcMinPort-rtcMaxPort)');
      }
      throw err;
    }
    if (this.#closed) {
      transport.close();
      throw conflict(`conference ${this.id} is closing`);
    }
    const ingestId = `ingest-${transport.id}`;
    const peer = new Peer(ingestId, `ingest:${request.deviceId}`, request.displayName, 'site', () => undefined);
    try {
      const srtp = request.srtp ? { cryptoSuite: 'AES_CM_128_HMAC_SHA1_80' as const, keyBase64: randomSrtpKey() } : undefined;
      // comedia learns the sender's address from its first packet; SRTP needs the sender's key now.
      if (srtp) await transport.connect({ srtpParameters: srtp });
      const ssrc = randomSsrc();
      const producer = (await transport.produce({
        kind: 'video',
        rtpParameters: ingestRtpParameters(request.codec, ssrc),
        appData: { peerId: ingestId, source: request.source, deviceId: request.deviceId },
      })) as types.Producer<PeerProducerAppData>;
      peer.producers.set(producer.id, producer);
      producer.observer.once('close', () => this.#onProducerClosed(peer, producer));
      transport.observer.once('close', () => {
        clearInterval(idleTimer);
        this.removePeer(peer);
      });
      const idleTimer = this.#watchIngestIdle(transport);
      this.#peers.set(peer.id, peer);
      this.broadcast('peerJoined', peer.summary, peer.id);
      this.broadcast('newProducer', producerInfo(producer), peer.id);
      this.#ingests.set(ingestId, { transport, owner });
      this.#log.info({ ingestId, deviceId: request.deviceId, codec: request.codec, srtp: request.srtp }, 'ingest opened');
      const { localIp, localPort } = transport.tuple;
      const rtcpPort = transport.rtcpTuple!.localPort;
      return {
        ingestId,
        producerId: producer.id,
        deviceId: request.deviceId,
        source: request.source,
        ip: reachableAddress(localIp, this.#limits.announcedIp),
        port: localPort,
        rtcpPort,
        codec: request.codec,
        payloadType: ingestPayloadType(request.codec),
        ssrc,
        clockRate: 90000,
        ...(srtp ? { srtp } : {}),
      };
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  /** An open ingest: who opened it (token `sub`, for the owner check) and its received bytes. */
  ingest(ingestId: string): { ingestId: string; owner: string; bytesReceived: () => Promise<number> } | undefined {
    const entry = this.#ingests.get(ingestId);
    if (!entry) return undefined;
    const { transport, owner } = entry;
    return { ingestId, owner, bytesReceived: () => transport.getStats().then((stats) => stats[0]?.bytesReceived ?? 0) };
  }

  /** How many ingests `owner` holds here (for media.maxIngestsPerUser across conferences). */
  ingestsOwnedBy(owner: string): number {
    let count = 0;
    for (const entry of this.#ingests.values()) if (entry.owner === owner) count++;
    return count;
  }

  closeIngest(ingestId: string): void {
    const entry = this.#ingests.get(ingestId);
    if (!entry) throw notFound(`ingest ${ingestId} not found`);
    entry.transport.close();
  }

  /** A conference made for a request that then failed (an ingest refused) must not linger without peers. */
  closeIfEmpty(): void {
    if (this.#peers.size === 0 && this.#openingIngests.size === 0) this.close();
  }

  #checkRoomForPeer(): void {
    if (this.#peers.size + this.#openingIngests.size >= this.#limits.maxPeersPerConference) {
      throw limitExceeded(`conference ${this.id} is full: at most ${this.#limits.maxPeersPerConference} peers (media.maxPeersPerConference)`);
    }
  }

  #watchIngestIdle(transport: types.PlainTransport): NodeJS.Timeout {
    let lastBytes = -1;
    const timeout = this.#limits.ingestIdleTimeoutMs;
    return setInterval(() => {
      void transport.getStats().then(
        (stats) => {
          const bytes = stats[0]?.bytesReceived ?? 0;
          if (bytes === lastBytes) {
            this.#log.warn({ transportId: transport.id, idleMs: timeout }, 'ingest received nothing; closing it');
            transport.close();
          }
          lastBytes = bytes;
        },
        () => undefined,
      );
    }, timeout);
  }

  /** Closes everything the peer owns, tells the others, and closes the conference when it was the last. */
  removePeer(peer: Peer): void {
    if (this.#peers.get(peer.id) !== peer) return;
    this.#peers.delete(peer.id);
    const ingest = this.#ingests.get(peer.id);
    this.#ingests.delete(peer.id);
    ingest?.transport.close();
    peer.close();
    this.broadcast('peerLeft', { peerId: peer.id });
    this.#log.info({ peerId: peer.id, peers: this.#peers.size }, 'peer left');
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
    this.emit('recovered', worker);
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
