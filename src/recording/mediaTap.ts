// The recorder's only access to mediasoup. Everything else in src/recording/
// sees a RecordingTap: a paused consumer of one producer on a PlainTransport
// bound to loopback, on the router where that producer lives, plus the
// producer's kind, source and owner.

import type { types } from 'mediasoup';
import type { Conference } from '../media/Conference.js';
import type { Peer } from '../media/Peer.js';
import type { ProducerSource } from '../media/events.js';

export interface RecordingTap {
  readonly producerId: string;
  readonly peerId: string;
  readonly kind: types.MediaKind;
  readonly source: ProducerSource;
  /** Not yet connected: the recorder connects it to its ffmpeg's port. */
  readonly transport: types.PlainTransport;
  /** Created paused; resume once ffmpeg listens. */
  readonly consumer: types.Consumer;
  /** The producer itself, for its sender reports (the sender's own RTP→NTP clock). */
  readonly producer: types.Producer;
}

/**
 * A consumer of `producerId` on a new PlainTransport of the conference's
 * router: loopback only, RTCP muxed on the RTP port (ffmpeg's RTP demuxer
 * tells RTCP from RTP by payload type), no comedia (we name ffmpeg's port),
 * no SRTP (it never leaves the host). The consumer takes the producer's codec
 * without RTX or header extensions: ffmpeg sends no NACKs and would drop them.
 * Closing the transport closes the consumer; both close with the router.
 */
export async function openRecordingTap(conference: Conference, producerId: string): Promise<RecordingTap> {
  const found = findProducer(conference, producerId);
  if (!found) throw new Error(`producer ${producerId} is not in conference ${conference.id}`);
  const { producer, owner, source } = found;
  const peerId = owner.id;
  // A conference spans several routers (one per worker it uses): the tap goes
  // on the router of the producer's owner, where the producer itself lives, so
  // nothing is piped for it. (Not counted in owner.consumers: those are the
  // owner's own, which last-N pauses and resumes.)
  const router = await conference.routerConsuming(owner, producerId);
  const transport = await router.createPlainTransport({
    listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
    rtcpMux: true,
    comedia: false,
    appData: { recording: true },
  });
  try {
    const rtpCapabilities: types.RtpCapabilities = {
      codecs: (router.rtpCapabilities.codecs ?? []).filter((c) => c.kind === producer.kind && !/\/rtx$/i.test(c.mimeType)),
      headerExtensions: [],
    };
    const consumer = await transport.consume({ producerId, rtpCapabilities, paused: true, appData: { recording: true } });
    // A simulcast camera: always its best layer; the recorder has no bandwidth estimate to adapt with.
    if (consumer.type === 'simulcast' || consumer.type === 'svc') await consumer.setPreferredLayers({ spatialLayer: 3, temporalLayer: 3 }).catch(() => undefined);
    return { producerId, peerId, kind: producer.kind, source, transport, consumer, producer };
  } catch (err) {
    transport.close();
    throw err;
  }
}

/**
 * Calls `onProducer(producerId)` for producers that appear on the conference's
 * primary router from now on, through the router's observer so the conference
 * needs no hook. Producers on its other routers (it has one per worker it
 * uses) are found by the recording's sweep of conference.producers.
 * Returns the unsubscribe function.
 */
export function watchNewProducers(conference: Conference, onProducer: (producerId: string) => void): () => void {
  let router: types.Router | undefined;
  const watched = new Set<types.Transport>();
  // The producer is in its peer's map only once produce() has resumed: look it up a moment later.
  const onNewProducer = (producer: types.Producer) => setTimeout(() => onProducer(producer.id), 50);
  const onTransport = (transport: types.Transport) => {
    if ((transport.appData as { recording?: boolean }).recording || watched.has(transport)) return;
    watched.add(transport);
    transport.observer.on('newproducer', onNewProducer);
    transport.observer.once('close', () => watched.delete(transport));
  };
  let closed = false;
  let poll: NodeJS.Timeout | undefined;
  const primary = (): types.Router | undefined => {
    try {
      return conference.router;
    } catch {
      return undefined; // between a lost last router and its replacement
    }
  };
  const attach = (next: types.Router) => {
    router?.observer.off('newtransport', onTransport);
    router?.observer.off('close', onRouterClose);
    router = next;
    router.observer.on('newtransport', onTransport);
    router.observer.once('close', onRouterClose);
    // Transports opened before the recording started publish new producers too (a screen share).
    for (const peer of conference.peers) for (const transport of peer.transports.values()) onTransport(transport);
  };
  // Worker death: the conference's primary router may be lost and replaced;
  // follow the new one once it is there. What is published before we attach is
  // caught by the recording's periodic sweep of conference.producers.
  const onRouterClose = () => {
    const old = router;
    const deadline = Date.now() + 30_000;
    const check = () => {
      if (closed || conference.closed) return;
      const next = primary();
      if (next && next !== old && !next.closed) return attach(next);
      if (Date.now() < deadline) poll = setTimeout(check, 50);
    };
    check();
  };
  const first = primary();
  if (first) attach(first);
  else onRouterClose();
  return () => {
    closed = true;
    clearTimeout(poll);
    router?.observer.off('newtransport', onTransport);
    router?.observer.off('close', onRouterClose);
    for (const transport of watched) transport.observer.off('newproducer', onNewProducer);
    watched.clear();
  };
}

/** Producer ids of the conference now. */
export function currentProducerIds(conference: Conference): string[] {
  return conference.producers.map((p) => p.producerId);
}

function findProducer(conference: Conference, producerId: string): { producer: types.Producer; owner: Peer; source: ProducerSource } | undefined {
  for (const peer of conference.peers) {
    const producer = peer.producers.get(producerId);
    if (producer && !producer.closed) return { producer, owner: peer, source: producer.appData.source };
  }
  return undefined;
}
