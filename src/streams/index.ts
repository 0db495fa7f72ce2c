import type { Server } from 'socket.io';
import type { AuditSink } from '../audit/events.js';
import type { DeviceHistoryStore } from '../cluster/deviceHistory.js';
import { MemoryDeviceHistory } from '../cluster/memoryDeviceHistory.js';
import { RedisDeviceHistory } from '../cluster/redisDeviceHistory.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { createLogger } from '../telemetry/logger.js';
import { DeviceStreams, type DeviceStreamsOptions } from './DeviceStreams.js';
import { UplinkServer, type UplinkLimits } from './UplinkServer.js';

export { DeviceStreams } from './DeviceStreams.js';
export type { DeviceStreamsOptions } from './DeviceStreams.js';
export type { DeviceStreamStats } from '../telemetry/opsReport.js';
export { UplinkServer } from './UplinkServer.js';

/** The hub's device flow: history store (Redis when redisUrl is set), streams service, /uplink namespace. */
export async function startDeviceStreams(options: {
  io: Server;
  conferences: ConferenceManager;
  jwtSecret: string;
  redisUrl: string | null;
  streams?: DeviceStreamsOptions;
  uplink?: UplinkLimits;
  audit?: AuditSink;
}): Promise<{ streams: DeviceStreams; uplink: UplinkServer }> {
  const store: DeviceHistoryStore = options.redisUrl ? await RedisDeviceHistory.connect(options.redisUrl) : new MemoryDeviceHistory();
  createLogger('device-streams').info({ history: store.kind }, 'device streams ready');
  const streams = new DeviceStreams(store, options.conferences, options.streams);
  const uplink = new UplinkServer(options.io, streams, options.jwtSecret, options.uplink, options.audit);
  return { streams, uplink };
}
