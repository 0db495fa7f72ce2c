// Every event the hub sends to a peer, with its payload (docs/PROTOCOL.md,
// "Events" and "Devices in a conference"). Types only.

import type { PeerSummary, ProducerInfo } from './conference.js';
import type { DeviceInfo, Reading } from './readings.js';
import type { RecordingStateEvent } from './recording.js';

/**
 * Seqs of a device a peer will never get: the site journal's cap dropped them
 * (`journal-cap`), a corrupt journal region lost them (`lost`), or the hub
 * withheld this peer's waveforms because it was not reading (`slow-reader`).
 */
export interface DeviceGap {
  from: number;
  to: number;
  reason: 'journal-cap' | 'lost' | 'slow-reader';
}

/** deviceReadings: readings in seq order, each seq at most once per peer. */
export interface DeviceReadingsEvent {
  deviceId: string;
  readings: Reading[];
  /** Extension: seqs of this span the peer will never get; with them, readings and gaps tile the span. */
  gaps?: DeviceGap[];
  /** Extension: history sent once at join (or a resume), not new readings. */
  replay?: true;
}

/** Extension deviceAlarm: an alarm that jumped its device's backlog; it comes again, in order, in deviceReadings. */
export interface DeviceAlarmEvent {
  deviceId: string;
  reading: Reading;
}

/** Extension videoSuspended: why the hub holds a video back from this viewer (only the downlink's bandwidth, today). */
export interface VideoSuspendedEvent {
  consumerId: string;
  producerId: string;
  reason: 'bandwidth';
}

/** Event name → payload, for everything the hub emits on a peer's socket. */
export interface PeerEventMap {
  peerJoined: PeerSummary;
  peerLeft: { peerId: string };
  newProducer: ProducerInfo;
  producerClosed: { producerId: string };
  consumerClosed: { consumerId: string; producerId: string };
  deviceReadings: DeviceReadingsEvent;
  deviceStatus: DeviceInfo;
  /** Extension: one of the peer's own transports was closed by the hub (worker died, DTLS failed, ICE gone). */
  transportClosed: { transportId: string; reason: string };
  /** Extension: the token expired; the hub disconnects the socket right after. */
  tokenExpired: { exp: number };
  /** Extension: the token (or every token of its subject) was revoked; the hub disconnects right after. */
  tokenRevoked: Record<never, never>;
  /** Extension: the dominant speaker changed (mediasoup ActiveSpeakerObserver over audio producers). */
  activeSpeaker: { peerId: string; producerId: string };
  deviceAlarm: DeviceAlarmEvent;
  /** Extension: the conference's recording started or stopped (docs/RECORDING.md). */
  recordingState: RecordingStateEvent;
  /** Extension: the hub paused one of the peer's video consumers because its downlink cannot carry it (docs/LINKS.md). */
  videoSuspended: VideoSuspendedEvent;
  /** Extension: a video the hub had suspended flows again. */
  videoResumed: { consumerId: string; producerId: string };
}

export type PeerEventName = keyof PeerEventMap;

/** How the hub reaches one peer: an event with the payload its name requires. */
export type PeerNotify = <E extends PeerEventName>(event: E, data: PeerEventMap[E]) => void;
