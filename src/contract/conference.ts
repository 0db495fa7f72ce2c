// Who is in a conference and what they send: the objects the signaling
// requests and events of docs/PROTOCOL.md, "Signaling", carry. Types only.
// mediasoup's own parameter objects are typed as mediasoup-client describes
// them: that is what a client hands over and gets back, and the hub's
// mediasoup types are assignable to them both ways.

import type { DtlsParameters, IceCandidate, IceParameters, MediaKind, RtpParameters } from 'mediasoup-client/types';

/** A token's role (docs/SECURITY.md, "Tokens"); agents have their own token kind. */
export type Role = 'specialist' | 'site' | 'engineer';

/** What a producer carries; audio may be microphone or screen, video anything but microphone. */
export type ProducerSource = 'camera' | 'microphone' | 'screen' | 'ultrasound' | 'device-video';

export interface PeerSummary {
  peerId: string;
  displayName: string;
  role: Role;
  /** Extension: the hub of a peer on another hub of a cluster (docs/PROTOCOL.md, "Several hubs"); absent for this hub's own. */
  hubId?: string;
}

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: MediaKind;
  source: ProducerSource;
  /** Extension: the hub of a producer on another hub of a cluster; absent for this hub's own. */
  hubId?: string;
}

/** A WebRtcTransport as createTransport answers it: what the client transport is created from. */
export interface TransportOptions {
  id: string;
  iceParameters: IceParameters;
  iceCandidates: IceCandidate[];
  dtlsParameters: DtlsParameters;
}

/** A consumer as consume answers it (created paused). */
export interface ConsumerOptions {
  id: string;
  producerId: string;
  kind: MediaKind;
  rtpParameters: RtpParameters;
}
