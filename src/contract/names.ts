// The contract's names as values, for what must enumerate them at run time
// (the test that holds docs/PROTOCOL.md and this folder together). The
// assertions below make a name missing here, or one too many, a compile error.

import type { PeerEventName } from './events.js';
import type { RequestName } from './signaling.js';

export const REQUEST_NAMES = [
  'join',
  'createTransport',
  'connectTransport',
  'produce',
  'consume',
  'resumeConsumer',
  'pauseProducer',
  'resumeProducer',
  'closeProducer',
  'setConsumerLayers',
  'restartIce',
  'setVideoPreferences',
  'leave',
  'refreshToken',
  'startRecording',
  'stopRecording',
] as const satisfies readonly RequestName[];

export const PEER_EVENT_NAMES = [
  'peerJoined',
  'peerLeft',
  'newProducer',
  'producerClosed',
  'consumerClosed',
  'deviceReadings',
  'deviceStatus',
  'transportClosed',
  'tokenExpired',
  'tokenRevoked',
  'activeSpeaker',
  'deviceAlarm',
  'recordingState',
  'videoSuspended',
  'videoResumed',
] as const satisfies readonly PeerEventName[];

/** true when A and B are each assignable to the other. */
export type Equivalent<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Every key of every member of a union (keyof of a union gives only the shared ones). */
export type KeysOf<T> = T extends unknown ? keyof T : never;
/** Equivalent, and with the same keys: an optional field one side lacks counts as a difference. */
export type SameShape<A, B> = Equivalent<A, B> extends true ? Equivalent<KeysOf<A>, KeysOf<B>> : false;
/** Compiles only for true: `type _ = Assert<Equivalent<X, Y>>`. */
export type Assert<T extends true> = T;

export type AllRequestsListed = Assert<Equivalent<(typeof REQUEST_NAMES)[number], RequestName>>;
export type AllEventsListed = Assert<Equivalent<(typeof PEER_EVENT_NAMES)[number], PeerEventName>>;
