// The public contract (DESIGN.md sections 3 and 4), typed from the hub's own
// definitions so the client cannot drift from it. Types only: nothing of src/
// ends up in the bundle.
export type { DeviceInfo, Reading, ChannelInfo, AlarmPriority, DeviceStatus } from '../../src/devices/reading.js';
export type { PeerEventMap, PeerSummary, ProducerInfo, ProducerSource, Role } from '../../src/media/events.js';

import type { DeviceInfo } from '../../src/devices/reading.js';
import type { PeerSummary, ProducerInfo } from '../../src/media/events.js';

export interface JoinReply {
  peerId: string;
  role: string;
  routerRtpCapabilities: import('mediasoup-client/types').RtpCapabilities;
  peers: PeerSummary[];
  producers: ProducerInfo[];
  devices?: DeviceInfo[];
}
export type { DeviceStreamStats, OpsWorker } from '../../src/telemetry/opsReport.js';
