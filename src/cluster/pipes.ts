import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import { HoichanError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { RemoteProducer } from '../media/remote.js';
import { ClusterBus } from './bus.js';
import type { ClusterConfig } from './config.js';
import { asRtpParameters, type BusMessageOf } from './messages.js';

const log = createLogger('cluster-pipes');

/** Where this hub's pipe transports listen, and the address other hubs are told to send to. */
export interface PipeAddress {
  listenIp: string;
  announced: string;
}

/** A remote producer brought onto one router of this hub. */
interface PipeIn {
  pipeId: string;
  hubId: string;
  conferenceId: string;
  producerId: string;
  ready: Promise<void>;
  transport?: types.PipeTransport;
  producer?: types.Producer;
}

/** A producer of this hub sent to another hub. */
interface PipeOut {
  hubId: string;
  conferenceId: string;
  producerId: string;
  transport: types.PipeTransport;
}

/**
 * Media between hubs (docs/SCALING.md, "Pipes"): when a peer here consumes
 * a producer of another hub, this hub opens a PipeTransport, asks the owning
 * hub over the bus to open its end and a pipe consumer of the producer, and
 * produces it here with the same producer id. One pipe per (producer,
 * router): the next consumers of it on this router reuse it. A pipe closes
 * with its producer, its router, or either hub.
 *
 * One PipeTransport pair per piped producer: a closed producer takes exactly
 * its own transports with it, and a lost pipe loses one stream. SRTP when the
 * asking hub's cluster.pipeSrtp is on (the answering hub follows the ask).
 */
export class PipeLinks {
  readonly #hubId: string;
  readonly #bus: ClusterBus;
  readonly #conferences: ConferenceManager;
  readonly #address: PipeAddress;
  readonly #config: Pick<ClusterConfig, 'pipeSrtp' | 'requestTimeoutMs'>;
  readonly #in = new Map<string, PipeIn>();
  readonly #out = new Map<string, PipeOut>();
  /** The media address a hub of the directory registered (polling the directory once more if the hub is new). */
  readonly #mediaAddressOf: (hubId: string) => Promise<string | undefined>;

  constructor(
    hubId: string,
    bus: ClusterBus,
    conferences: ConferenceManager,
    address: PipeAddress,
    config: Pick<ClusterConfig, 'pipeSrtp' | 'requestTimeoutMs'>,
    mediaAddressOf: (hubId: string) => Promise<string | undefined>,
  ) {
    this.#mediaAddressOf = mediaAddressOf;
    this.#hubId = hubId;
    this.#bus = bus;
    this.#conferences = conferences;
    this.#address = address;
    this.#config = config;
  }

  get inCount(): number {
    return this.#in.size;
  }
  get outCount(): number {
    return this.#out.size;
  }

  /** Per piped producer: how many consumers this hub has of it (for the ops page and tests). */
  piped(): Array<{ producerId: string; hubId: string; conferenceId: string; producer: types.Producer | undefined }> {
    return [...this.#in.values()].map((p) => ({ producerId: p.producerId, hubId: p.hubId, conferenceId: p.conferenceId, producer: p.producer }));
  }

  /** This hub's ends of the pipes it sends (for tests and the ops page). */
  outTransports(): types.PipeTransport[] {
    return [...this.#out.values()].map((o) => o.transport);
  }

  /** Brings a remote producer onto `router` (once; concurrent and later callers share the pipe). */
  pipeIn(conferenceId: string, producer: RemoteProducer, router: types.Router, slot: { rtcMinPort: number; rtcMaxPort: number }): Promise<void> {
    const key = `${producer.producerId}@${router.id}`;
    let entry = this.#in.get(key);
    if (!entry) {
      const created: PipeIn = { pipeId: randomUUID(), hubId: producer.hubId, conferenceId, producerId: producer.producerId, ready: Promise.resolve() };
      created.ready = this.#open(key, created, producer, router, slot);
      created.ready.catch(() => {
        if (this.#in.get(key) === created) this.#in.delete(key);
      });
      this.#in.set(key, created);
      entry = created;
    }
    return entry.ready;
  }

  async #open(key: string, entry: PipeIn, remote: RemoteProducer, router: types.Router, slot: { rtcMinPort: number; rtcMaxPort: number }): Promise<void> {
    const transport = await this.#createTransport(router, this.#config.pipeSrtp, slot, { conferenceId: entry.conferenceId, pipeId: entry.pipeId, hubId: entry.hubId });
    entry.transport = transport;
    transport.observer.once('close', () => {
      if (this.#in.get(key) === entry) this.#in.delete(key);
      // The other end is of no use any more (our producer or router closed, or the set-up failed).
      this.#bus.toHub(entry.hubId, { type: 'pipeClosed', pipeId: entry.pipeId });
    });
    try {
      const what = `piping producer ${remote.producerId} from hub ${remote.hubId}`;
      const reply = await this.#bus.request(
        remote.hubId,
        {
          type: 'pipeRequest',
          requestId: ClusterBus.requestId(),
          conferenceId: entry.conferenceId,
          producerId: remote.producerId,
          pipeId: entry.pipeId,
          ip: this.#address.announced,
          port: transport.tuple.localPort,
          srtp: transport.srtpParameters ?? null,
        },
        this.#config.requestTimeoutMs,
        what,
      );
      if (reply.type === 'pipeRefused') throw new HoichanError(reply.code === 'not_found' ? 'not_found' : 'unavailable', `${what}: ${reply.message}`);
      if (reply.type !== 'pipeReply') throw new HoichanError('internal', `${what}: unexpected answer ${reply.type}`);
      await transport.connect({ ip: reply.ip, port: reply.port, ...(reply.srtp ? { srtpParameters: reply.srtp } : {}) });
      const producer = await transport.produce({
        id: remote.producerId,
        kind: reply.kind,
        rtpParameters: asRtpParameters(reply.rtpParameters),
        paused: reply.paused,
        appData: { peerId: remote.peerId, source: remote.source, hubId: remote.hubId, piped: true },
      });
      entry.producer = producer;
      producer.observer.once('close', () => transport.close());
      log.info({ producerId: remote.producerId, from: remote.hubId, conferenceId: entry.conferenceId, srtp: reply.srtp !== null }, 'producer piped in from another hub');
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  /** Another hub asks for one of this hub's producers. */
  async answer(request: BusMessageOf<'pipeRequest'>): Promise<void> {
    const refuse = (code: 'not_found' | 'unavailable' | 'internal', message: string) => this.#bus.toHub(request.hub, { type: 'pipeRefused', requestId: request.requestId, code, message });
    const conference = this.#conferences.get(request.conferenceId);
    const home = conference && !conference.closed ? conference.producerRouter(request.producerId) : undefined;
    if (!home) return refuse('not_found', `producer ${request.producerId} is not on hub ${this.#hubId}`);
    // Media goes only to the address the asking hub registered: a message on the bus alone
    // cannot make this hub send a patient's stream somewhere else.
    const registered = await this.#mediaAddressOf(request.hub).catch(() => undefined);
    if (registered !== request.ip) {
      log.warn({ from: request.hub, producerId: request.producerId }, 'pipe request refused: the address is not the media address that hub registered');
      return refuse('unavailable', `hub ${request.hub} is not in the directory with media address ${request.ip}`);
    }
    let transport: types.PipeTransport | undefined;
    try {
      transport = await this.#createTransport(home.router, request.srtp !== null, home.worker, { conferenceId: request.conferenceId, pipeId: request.pipeId, hubId: request.hub });
      await transport.connect({ ip: request.ip, port: request.port, ...(request.srtp ? { srtpParameters: request.srtp } : {}) });
      const consumer = await transport.consume({ producerId: request.producerId });
      const out: PipeOut = { hubId: request.hub, conferenceId: request.conferenceId, producerId: request.producerId, transport };
      this.#out.set(request.pipeId, out);
      const t = transport;
      consumer.observer.once('close', () => t.close());
      t.observer.once('close', () => {
        if (this.#out.get(request.pipeId) === out) this.#out.delete(request.pipeId);
      });
      this.#bus.toHub(request.hub, {
        type: 'pipeReply',
        requestId: request.requestId,
        ok: true,
        ip: this.#address.announced,
        port: t.tuple.localPort,
        srtp: t.srtpParameters ?? null,
        kind: consumer.kind,
        rtpParameters: consumer.rtpParameters as unknown as BusMessageOf<'pipeReply'>['rtpParameters'],
        paused: consumer.producerPaused,
      });
      log.info({ producerId: request.producerId, to: request.hub, conferenceId: request.conferenceId }, 'producer piped out to another hub');
    } catch (err) {
      transport?.close();
      const message = (err as Error).message;
      log.warn({ producerId: request.producerId, to: request.hub, err: message }, 'pipe request failed');
      refuse(/no more available ports/i.test(message) ? 'unavailable' : 'internal', /no more available ports/i.test(message) ? 'no free media port on the producing hub' : 'the producing hub could not open the pipe');
    }
  }

  async #createTransport(router: types.Router, srtp: boolean, slot: { rtcMinPort: number; rtcMaxPort: number }, appData: Record<string, string>): Promise<types.PipeTransport> {
    const { listenIp, announced } = this.#address;
    return router.createPipeTransport({
      listenInfo: { protocol: 'udp', ip: listenIp, ...(announced !== listenIp ? { announcedAddress: announced } : {}), portRange: { min: slot.rtcMinPort, max: slot.rtcMaxPort } },
      enableSrtp: srtp,
      // Retransmissions between hubs: a WAN link loses packets, and NACKs are cheaper than keyframes.
      enableRtx: true,
      appData,
    });
  }

  /** The producer closed (on its own hub, or we learnt so): its pipes, either way, go. */
  producerClosed(producerId: string): void {
    for (const entry of [...this.#in.values()]) if (entry.producerId === producerId) entry.producer ? entry.producer.close() : entry.transport?.close();
    for (const out of [...this.#out.values()]) if (out.producerId === producerId) out.transport.close();
  }

  /** The consuming hub closed its end. */
  remoteClosed(pipeId: string): void {
    this.#out.get(pipeId)?.transport.close();
  }

  /** A hub left: what it sent us and what we sent it. */
  hubGone(hubId: string): void {
    for (const entry of [...this.#in.values()]) if (entry.hubId === hubId) entry.producer ? entry.producer.close() : entry.transport?.close();
    for (const out of [...this.#out.values()]) if (out.hubId === hubId) out.transport.close();
  }

  conferenceClosed(conferenceId: string): void {
    for (const out of [...this.#out.values()]) if (out.conferenceId === conferenceId) out.transport.close();
  }

  close(): void {
    for (const entry of [...this.#in.values()]) entry.transport?.close();
    for (const out of [...this.#out.values()]) out.transport.close();
  }
}
