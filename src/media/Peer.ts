import type { types } from 'mediasoup';
import type { PeerEventMap, PeerEventName, PeerNotify, PeerSummary, ProducerSource, Role } from './events.js';

export type TransportDirection = 'send' | 'recv';

export interface PeerTransportAppData extends types.AppData {
  peerId: string;
  direction: TransportDirection;
  /** connectTransport was called; mediasoup accepts it once. */
  connected?: boolean;
}

export interface PeerProducerAppData extends types.AppData {
  peerId: string;
  source: ProducerSource;
}

/**
 * One participant of a conference: its transports, producers and consumers.
 * The conference creates and closes them; a Peer only holds and finds them.
 * Its notify function is rebound when the participant's socket reconnects.
 */
export class Peer {
  readonly transports = new Map<string, types.WebRtcTransport<PeerTransportAppData>>();
  readonly producers = new Map<string, types.Producer<PeerProducerAppData>>();
  readonly consumers = new Map<string, types.Consumer>();
  /** createTransport requests in flight: counted against maxTransportsPerPeer. */
  pendingTransports = 0;
  /** consume requests in flight, by producer id: a second request for the same producer waits for the first. */
  readonly pendingConsumes = new Map<string, { transportId: string; consumer: Promise<types.Consumer> }>();
  #notify: PeerNotify;
  #closed = false;
  /** Producers this peer asked to close itself: it needs no producerClosed for them. */
  readonly closingByRequest = new Set<string>();

  constructor(
    readonly id: string,
    readonly userId: string,
    readonly displayName: string,
    readonly role: Role,
    notify: PeerNotify,
    /** The site the person joins from (token claim `site`), for the consultation records; null when not named. */
    readonly site: string | null = null,
  ) {
    this.#notify = notify;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get summary(): PeerSummary {
    return { peerId: this.id, displayName: this.displayName, role: this.role };
  }

  rebind(notify: PeerNotify): void {
    this.#notify = notify;
  }

  notify<E extends PeerEventName>(event: E, data: PeerEventMap[E]): void {
    if (!this.#closed) this.#notify(event, data);
  }

  /** Closes every transport, which closes its producers and consumers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const transport of this.transports.values()) transport.close();
  }
}
