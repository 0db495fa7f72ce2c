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

/** One router of a conference. */
export interface OpsConferenceRouter {
  routerId: string;
  workerSlot: number;
  peers: number;
  consumers: number;
  /** Producers of the conference's other routers piped into this one. */
  pipes: number;
}

/** GET /api/ops: the picture the engineer page shows (docs/OPERATIONS.md). */
export interface OpsReport {
  generatedAt: string;
  statsIntervalSeconds: number;
  workers: OpsWorker[];
  conferences: {
    conferenceId: string;
    /** The worker of its oldest router (its active-speaker observer's); null while it has none. */
    workerSlot: number | null;
    /** Its routers, one per worker it uses (docs/SCALING.md). */
    routers: OpsConferenceRouter[];
    /** Producers piped between its routers. */
    pipes: number;
    peers: {
      peerId: string;
      /** The worker of the router its transports are on; null between a lost router and its next request. */
      workerSlot: number | null;
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
