import type { types } from 'mediasoup';
import type { PeerEventMap, PeerEventName, PeerSummary, ProducerInfo } from './events.js';

// The seam between a conference and the other hubs that host it
// (src/cluster, docs/SCALING.md). A hub alone has none; with a cluster the
// conference asks it for the peers and producers on other hubs and to bring
// a remote producer onto a router of this hub before consuming it.

/** A peer or producer on another hub, marked with that hub (a documented extension of the join reply). */
export type RemotePeer = PeerSummary & { hubId: string };
export type RemoteProducer = ProducerInfo & { hubId: string };

export interface RemoteMedia {
  peers(): RemotePeer[];
  producers(): RemoteProducer[];
  producer(producerId: string): RemoteProducer | undefined;
  /**
   * Makes the remote producer consumable on `router`, with the same producer
   * id: piped once per (producer, router), later calls reuse the pipe. Fails
   * with `unavailable` when the owning hub does not answer.
   */
  pipe(producerId: string, router: types.Router, slot: { rtcMinPort: number; rtcMaxPort: number }): Promise<void>;
}

/** What a conference broadcasts to its own peers, as the cluster forwards it to other hubs. */
export type BroadcastEvent = { [E in PeerEventName]: { event: E; data: PeerEventMap[E] } }[PeerEventName];
