// Every signaling request with its payload and its reply (docs/PROTOCOL.md,
// "Requests and replies"). Types only: the hub validates payloads with the zod
// schemas of src/signaling/schemas.ts, which are checked against these at
// compile time, and the web client sends and reads these types.

import type { DtlsParameters, IceParameters, MediaKind, RtpCapabilities, RtpParameters } from 'mediasoup-client/types';
import type { ConsumerOptions, PeerSummary, ProducerInfo, ProducerSource, Role, TransportOptions } from './conference.js';
import type { DeviceInfo } from './readings.js';
import type { RecordingStateEvent } from './recording.js';

/** Error codes of a refused request (docs/PROTOCOL.md, "Requests and replies"). */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  /** A configured bound per principal was reached (devices per site, conferences, peers, consumers, ingests...); the message names the setting. */
  | 'limit_exceeded'
  /** The hub has no room for it now (e.g. the ingest port range is used up); retry later. */
  | 'unavailable'
  | 'internal';

/** A payload or reply with no fields. */
export type Empty = Record<never, never>;

export interface JoinReply {
  peerId: string;
  role: Role;
  routerRtpCapabilities: RtpCapabilities;
  peers: PeerSummary[];
  producers: ProducerInfo[];
  devices: DeviceInfo[];
  /** Extension: the conference's recording indicator at join (docs/RECORDING.md). */
  recording: RecordingStateEvent;
  /** Extension: the other hubs of this hub's region in a cluster, to rejoin through if this one is lost (docs/PROTOCOL.md, "Several hubs"). */
  hubs?: Array<{ hubId: string; url: string }>;
}

/** Request name → its payload and the fields of its `{ ok: true, ... }` reply. */
export interface SignalingRequests {
  join: {
    /** `displayName` is accepted for older clients and ignored: the name shown is the token's. */
    payload: { conferenceId: string; displayName?: string };
    reply: JoinReply;
  };
  createTransport: { payload: { direction: 'send' | 'recv' }; reply: { transport: TransportOptions } };
  connectTransport: { payload: { transportId: string; dtlsParameters: DtlsParameters }; reply: Empty };
  produce: {
    payload: { transportId: string; kind: MediaKind; rtpParameters: RtpParameters; source?: ProducerSource };
    reply: { producerId: string };
  };
  consume: { payload: { transportId: string; producerId: string; rtpCapabilities: RtpCapabilities }; reply: { consumer: ConsumerOptions } };
  resumeConsumer: { payload: { consumerId: string }; reply: Empty };
  pauseProducer: { payload: { producerId: string }; reply: Empty };
  resumeProducer: { payload: { producerId: string }; reply: Empty };
  closeProducer: { payload: { producerId: string }; reply: Empty };
  setConsumerLayers: { payload: { consumerId: string; spatialLayer: number; temporalLayer?: number }; reply: Empty };
  restartIce: { payload: { transportId: string }; reply: { iceParameters: IceParameters } };
  /**
   * Extension (last-N, docs/SCALING.md): the producers this viewer shows on its
   * stage and how many speaker thumbnails; the reply is the set forwarded now.
   */
  setVideoPreferences: { payload: { onStage: string[]; thumbnails: number }; reply: { stage: string[]; thumbnails: string[] } };
  leave: { payload: Empty; reply: Empty };
  /** Extension: a fresh token for the same subject, role and conference; moves the socket's expiry. */
  refreshToken: { payload: { token: string }; reply: { exp: number } };
  /** Extension: a specialist of the joined conference starts or stops its recording (docs/RECORDING.md). */
  startRecording: { payload: { conferenceId: string }; reply: { recording: RecordingStateEvent } };
  stopRecording: { payload: { conferenceId: string }; reply: { recording: RecordingStateEvent } };
}

export type RequestName = keyof SignalingRequests;
export type RequestPayload<N extends RequestName> = SignalingRequests[N]['payload'];
export type RequestReply<N extends RequestName> = SignalingRequests[N]['reply'];

export interface ErrorReply {
  ok: false;
  /** `redirect` (extension): a cluster hub that is draining or past its load names the hub to join through instead (docs/PROTOCOL.md, "Several hubs"). */
  error: { code: ErrorCode; message: string; redirect?: { hubId: string; url: string } };
}

/** What the ack of request N receives. */
export type Reply<N extends RequestName> = ({ ok: true } & RequestReply<N>) | ErrorReply;
