import type { DeviceInfo, Reading } from '../devices/reading.js';

export type Role = 'specialist' | 'site' | 'engineer';
export type ProducerSource = 'camera' | 'microphone' | 'screen' | 'ultrasound' | 'device-video';

export interface PeerSummary {
  peerId: string;
  displayName: string;
  role: Role;
}

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: 'audio' | 'video';
  source: ProducerSource;
}

/** Events the hub sends to the peers of a conference (DESIGN.md section 3, plus documented extensions). */
export interface PeerEventMap {
  peerJoined: PeerSummary;
  peerLeft: { peerId: string };
  newProducer: ProducerInfo;
  producerClosed: { producerId: string };
  consumerClosed: { consumerId: string; producerId: string };
  /** Extension: one of the peer's own transports was closed by the hub (worker died, DTLS failed, ICE gone). */
  transportClosed: { transportId: string; reason: string };
  /** Extension: the dominant speaker changed (mediasoup ActiveSpeakerObserver over audio producers). */
  activeSpeaker: { peerId: string; producerId: string };
  deviceReadings: { deviceId: string; readings: Reading[] };
  deviceStatus: DeviceInfo;
}

export type PeerEventName = keyof PeerEventMap;

/** How the media layer reaches a peer; the signaling layer binds it to a socket. */
export type PeerNotify = <E extends PeerEventName>(event: E, data: PeerEventMap[E]) => void;
