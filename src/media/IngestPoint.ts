import type { types } from 'mediasoup';
import { HoichanError, conflict, limitExceeded, notFound } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import { Peer, type PeerProducerAppData } from './Peer.js';
import type { MediaWorker } from './WorkerPool.js';
import { ingestListenInfos, reachableAddress } from './addresses.js';
import { ingestPayloadType, ingestRtpParameters, randomSrtpKey, randomSsrc, type IngestInfo, type IngestRequest } from './ingest.js';

/** The limits of the hub's config that ingests obey. */
export interface IngestLimits {
  /** Where plain (ingest) transports listen, and the address announced to senders. */
  listenIp: string;
  announcedIp: string | null;
  /** An ingest that receives nothing for this long is closed (the capture stopped or moved). */
  ingestIdleTimeoutMs: number;
  maxIngestsPerConference: number;
}

/** Where an ingest's plain transport lives. */
export interface IngestPlacement {
  readonly router: types.Router;
  readonly worker: MediaWorker;
}

/**
 * What a conference lends its ingests, and all they know of it: a router to
 * open the plain transport on, a room check, and a way to become a peer whose
 * producer the others hear about. The conference closes its IngestPoints
 * when it closes.
 */
export interface IngestHost {
  readonly id: string;
  isClosed(): boolean;
  /** The router (with its worker, for the worker's slice of the RTC port range) a new ingest opens its transport on. */
  ingestRouter(): Promise<IngestPlacement>;
  /** Throws limit_exceeded when the conference has no room for one more peer. */
  checkRoomForPeer(): void;
  /** The peer that sends as this user id, if any (an ingest's user id is `ingest:<deviceId>`). */
  peerOfUser(userId: string): Peer | undefined;
  /** The ingest is a peer now, with its one producer on `placement`: the others hear peerJoined and newProducer. */
  admit(peer: Peer, producer: types.Producer<PeerProducerAppData>, placement: IngestPlacement): void;
  /** The ingest's transport closed: its peer leaves the conference. */
  remove(peer: Peer): void;
}

/**
 * One RTP ingest: a device (ultrasound, device video) whose capture sends RTP
 * to a comedia PlainTransport it owns. It closes when asked, when its
 * conference closes, or after ingestIdleTimeoutMs without RTP.
 */
export class IngestPoint {
  readonly id: string;
  /** Who opened it (token `sub`), for the owner check and media.maxIngestsPerUser. */
  readonly owner: string;
  readonly peer: Peer;
  readonly #transport: types.PlainTransport;

  private constructor(transport: types.PlainTransport, peer: Peer, owner: string) {
    this.id = peer.id;
    this.owner = owner;
    this.peer = peer;
    this.#transport = transport;
  }

  get transport(): types.PlainTransport {
    return this.#transport;
  }

  async bytesReceived(): Promise<number> {
    const stats = await this.#transport.getStats();
    return stats[0]?.bytesReceived ?? 0;
  }

  close(): void {
    this.#transport.close();
  }

  /** Opens the transport and its producer; the caller (IngestPoints) has checked the caps. */
  static async open(host: IngestHost, limits: IngestLimits, log: Logger, request: IngestRequest, owner: string, onClose: (point: IngestPoint) => void): Promise<{ point: IngestPoint; info: IngestInfo }> {
    let transport: types.PlainTransport;
    let placement: IngestPlacement;
    try {
      placement = await host.ingestRouter();
      const { router, worker } = placement;
      transport = await router.createPlainTransport({
        ...ingestListenInfos(limits.listenIp, limits.announcedIp, { min: worker.rtcMinPort, max: worker.rtcMaxPort }),
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
        log.error({ deviceId: request.deviceId }, "ingest refused: no free port in the worker's RTC port range");
        throw new HoichanError('unavailable', 'no free media port for an ingest on this hub; try again later (operators: widen media.rtcMinPort-rtcMaxPort)');
      }
      throw err;
    }
    if (host.isClosed()) {
      transport.close();
      throw conflict(`conference ${host.id} is closing`);
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
      const point = new IngestPoint(transport, peer, owner);
      const idleTimer = watchIdle(transport, limits.ingestIdleTimeoutMs, log);
      transport.observer.once('close', () => {
        clearInterval(idleTimer);
        onClose(point);
        host.remove(peer);
      });
      host.admit(peer, producer, placement);
      log.info({ ingestId, deviceId: request.deviceId, codec: request.codec, srtp: request.srtp }, 'ingest opened');
      const { localIp, localPort } = transport.tuple;
      const rtcpPort = transport.rtcpTuple!.localPort;
      const info: IngestInfo = {
        ingestId,
        producerId: producer.id,
        deviceId: request.deviceId,
        source: request.source,
        ip: reachableAddress(localIp, limits.announcedIp),
        port: localPort,
        rtcpPort,
        codec: request.codec,
        payloadType: ingestPayloadType(request.codec),
        ssrc,
        clockRate: 90000,
        ...(srtp ? { srtp } : {}),
      };
      return { point, info };
    } catch (err) {
      transport.close();
      throw err;
    }
  }
}

/** The ingests of one conference, with its per-conference caps and the one-ingest-per-device rule. */
export class IngestPoints {
  readonly #host: IngestHost;
  readonly #limits: IngestLimits;
  readonly #log: Logger;
  readonly #open = new Map<string, IngestPoint>();
  /** Device ids of ingests being opened: counted against the caps and the one-ingest-per-device rule. */
  readonly #opening = new Set<string>();

  constructor(host: IngestHost, limits: IngestLimits) {
    this.#host = host;
    this.#limits = limits;
    this.#log = createLogger('ingest', { conferenceId: host.id });
  }

  /** Ingests being opened: the conference counts them as peers. */
  get opening(): number {
    return this.#opening.size;
  }

  get(ingestId: string): IngestPoint | undefined {
    return this.#open.get(ingestId);
  }

  /** How many ingests `owner` holds here (for media.maxIngestsPerUser across conferences). */
  ownedBy(owner: string): number {
    let count = 0;
    for (const point of this.#open.values()) if (point.owner === owner) count++;
    return count;
  }

  /**
   * Opens an RTP ingest: the device becomes a peer of the conference whose one
   * producer is fed by the capture. Viewers see peerJoined and newProducer as
   * for any site.
   */
  async open(request: IngestRequest, owner: string): Promise<IngestInfo> {
    if (this.#host.isClosed()) throw conflict(`conference ${this.#host.id} is closing`);
    const duplicate = this.#host.peerOfUser(`ingest:${request.deviceId}`);
    if (duplicate || this.#opening.has(request.deviceId)) {
      throw conflict(`device ${request.deviceId} already has an ingest${duplicate ? ` (${duplicate.id})` : ''}; close it first`);
    }
    if (this.#open.size + this.#opening.size >= this.#limits.maxIngestsPerConference) {
      throw limitExceeded(`a conference may hold at most ${this.#limits.maxIngestsPerConference} ingests (media.maxIngestsPerConference)`);
    }
    this.#host.checkRoomForPeer();
    // Reserved until the ingest is a peer or has failed, so concurrent requests count it.
    this.#opening.add(request.deviceId);
    try {
      const { point, info } = await IngestPoint.open(this.#host, this.#limits, this.#log, request, owner, (closed) => {
        if (this.#open.get(closed.id) === closed) this.#open.delete(closed.id);
      });
      // Closed already (its conference closed meanwhile): nothing to keep.
      if (!point.transport.closed) this.#open.set(point.id, point);
      return info;
    } finally {
      this.#opening.delete(request.deviceId);
    }
  }

  close(ingestId: string): void {
    const point = this.#open.get(ingestId);
    if (!point) throw notFound(`ingest ${ingestId} not found`);
    point.close();
  }

  /** The ingest whose peer this is, if any, closes (its peer left or the conference closes). */
  closePeer(peerId: string): void {
    this.#open.get(peerId)?.close();
  }

  closeAll(): void {
    for (const point of [...this.#open.values()]) point.close();
  }
}

function watchIdle(transport: types.PlainTransport, timeout: number, log: Logger): NodeJS.Timeout {
  let lastBytes = -1;
  return setInterval(() => {
    void transport.getStats().then(
      (stats) => {
        const bytes = stats[0]?.bytesReceived ?? 0;
        if (bytes === lastBytes) {
          log.warn({ transportId: transport.id, idleMs: timeout }, 'ingest received nothing; closing it');
          transport.close();
        }
        lastBytes = bytes;
      },
      () => undefined,
    );
  }, timeout);
}
