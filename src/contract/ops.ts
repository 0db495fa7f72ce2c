import type { DeviceStatus } from './readings.js';

// GET /api/ops, the engineer's picture (docs/OPERATIONS.md). Types only, so
// the web client's /ops view is typed from the same definitions.

/** One mediasoup worker. */
export interface OpsWorker {
  slot: number;
  pid: number;
  cpuPercent: number | null;
  rssBytes: number | null;
  routers: number;
  transports: number;
  producers: number;
  consumers: number;
  webRtcPort: number;
}

/** One device stream on the hub: flow, lag, status and its site's journal depth. */
export interface DeviceStreamStats {
  deviceId: string;
  siteId: string;
  conferenceId: string;
  protocol: string;
  status: DeviceStatus;
  reason?: string;
  stored: number;
  readingsPerSecond: number;
  received: number;
  duplicatesDropped: number;
  uplinkLagMs: number;
  siteJournalDepth: number;
  deviceJournalDepth: number;
}

/** GET /api/ops: the picture the engineer page shows (docs/OPERATIONS.md). */
export interface OpsReport {
  generatedAt: string;
  statsIntervalSeconds: number;
  workers: OpsWorker[];
  conferences: {
    conferenceId: string;
    workerSlot: number;
    peers: {
      peerId: string;
      displayName: string;
      role: string;
      producers: number;
      consumers: number;
      bitrateIn: number;
      bitrateOut: number;
      packetLossIn: number;
      packetLossOut: number;
    }[];
  }[];
  devices: DeviceStreamStats[];
  signaling: { sockets: number; requestsPerSecond: number };
}
