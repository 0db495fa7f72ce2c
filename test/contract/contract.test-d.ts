// Compile-time test of the public contract (src/contract/): tsc fails on this
// file when a request or event docs/PROTOCOL.md names has no type, or when a
// documented payload field is missing from its type. Not run by mocha (the
// name does not end in .test.ts); protocolDoc.test.ts checks at run time that
// the document and the contract's name lists agree.

import type {
  AlarmBody,
  Assert,
  DeviceGap,
  Equivalent,
  JoinReply,
  PeerEventMap,
  PeerEventName,
  Reading,
  RequestName,
  RequestPayload,
  RequestReply,
  Role,
} from '../../src/contract/index.js';

/** docs/PROTOCOL.md, "Requests and replies". */
type DocumentedRequests =
  | 'join'
  | 'createTransport'
  | 'connectTransport'
  | 'produce'
  | 'consume'
  | 'resumeConsumer'
  | 'pauseProducer'
  | 'resumeProducer'
  | 'closeProducer'
  | 'setConsumerLayers'
  | 'restartIce'
  | 'setVideoPreferences'
  | 'leave'
  | 'refreshToken'
  | 'startRecording'
  | 'stopRecording';

/** docs/PROTOCOL.md, "Events (hub → peers of the same conference)". */
type DocumentedEvents =
  | 'peerJoined'
  | 'peerLeft'
  | 'newProducer'
  | 'producerClosed'
  | 'consumerClosed'
  | 'deviceReadings'
  | 'deviceStatus'
  | 'transportClosed'
  | 'tokenExpired'
  | 'tokenRevoked'
  | 'activeSpeaker'
  | 'deviceAlarm'
  | 'recordingState'
  | 'videoSuspended'
  | 'videoResumed';

export type EveryRequestTyped = Assert<Equivalent<DocumentedRequests, RequestName>>;
export type EveryEventTyped = Assert<Equivalent<DocumentedEvents, PeerEventName>>;

// Payload fields the document lists, extensions included.
export type JoinPayload = Assert<Equivalent<keyof RequestPayload<'join'>, 'conferenceId' | 'displayName'>>;
export type JoinFields = Assert<Equivalent<keyof JoinReply, 'peerId' | 'role' | 'routerRtpCapabilities' | 'peers' | 'producers' | 'devices' | 'recording' | 'hubs'>>;
export type JoinRole = Assert<Equivalent<JoinReply['role'], Role>>;
export type RefreshReply = Assert<Equivalent<RequestReply<'refreshToken'>, { exp: number }>>;
export type VideoPreferencesPayload = Assert<Equivalent<keyof RequestPayload<'setVideoPreferences'>, 'onStage' | 'thumbnails'>>;
export type VideoPreferencesReply = Assert<Equivalent<RequestReply<'setVideoPreferences'>, { stage: string[]; thumbnails: string[] }>>;
export type ReadingsFields = Assert<Equivalent<keyof PeerEventMap['deviceReadings'], 'deviceId' | 'readings' | 'gaps' | 'replay'>>;
export type GapReasons = Assert<Equivalent<DeviceGap['reason'], 'journal-cap' | 'lost' | 'slow-reader'>>;
export type AlarmPayload = Assert<Equivalent<PeerEventMap['deviceAlarm'], { deviceId: string; reading: Reading }>>;
export type AlarmExtensions = Assert<'phase' | 'alarmId' | 'state' | 'source' extends keyof AlarmBody ? true : false>;
export type TokenExpired = Assert<Equivalent<PeerEventMap['tokenExpired'], { exp: number }>>;
