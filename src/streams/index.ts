import type { Socket as NetSocket } from 'node:net';
import type { Server } from 'socket.io';
import type { AuditSink } from '../audit/events.js';
import type { Authenticator } from '../auth/index.js';
import type { DeviceHistoryStore, HistoryLimits } from './history/deviceHistory.js';
import { MemoryDeviceHistory } from './history/memoryDeviceHistory.js';
import { RedisDeviceHistory } from './history/redisDeviceHistory.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { peerRoom } from '../signaling/SignalingServer.js';
import { createLogger } from '../common/logger.js';
import { DeviceStreams, type DeviceStreamsOptions } from './DeviceStreams.js';
import { UplinkServer, type UplinkLimits } from './UplinkServer.js';

export { DeviceStreams } from './DeviceStreams.js';
export type { DeviceStreamsOptions } from './DeviceStreams.js';
export type { DeviceStreamStats } from '../contract/ops.js';
export { UplinkServer } from './UplinkServer.js';

/** The hub's device flow: history store (Redis when redisUrl is set), streams service, /uplink namespace. */
export async function startDeviceStreams(options: {
  io: Server;
  conferences: ConferenceManager;
  auth: Authenticator;
  redisUrl: string | null;
  streams?: DeviceStreamsOptions;
  history?: Partial<HistoryLimits>;
  uplink?: UplinkLimits;
  audit?: AuditSink;
}): Promise<{ streams: DeviceStreams; uplink: UplinkServer }> {
  const store: DeviceHistoryStore = options.redisUrl ? await RedisDeviceHistory.connect(options.redisUrl, options.history) : new MemoryDeviceHistory(options.history);
  createLogger('device-streams').info({ history: store.kind }, 'device streams ready');
  const streams = new DeviceStreams(store, options.conferences, {
    peerBacklog: (peerId) => peerBacklog(options.io, peerId),
    // One emit to the peers' rooms: socket.io encodes the payload once for all of them.
    peerBroadcast: (peerIds, event, data) => options.io.to(peerIds.map(peerRoom)).emit(event, data),
    ...options.streams,
  });
  const uplink = new UplinkServer(options.io, streams, options.auth, options.uplink, options.audit);
  return { streams, uplink };
}

/**
 * Bytes queued towards a conference peer: engine.io's write buffer (packets
 * waiting while the transport is busy) plus what Node holds for the TCP socket
 * of the WebSocket upgrade. The most over the peer's sockets (normally one).
 */
export function peerBacklog(io: Server, peerId: string): number {
  let most = 0;
  for (const id of io.sockets.adapter.rooms.get(peerRoom(peerId)) ?? []) {
    const conn = io.sockets.sockets.get(id)?.conn;
    if (!conn) continue;
    let bytes = (conn.request.socket as NetSocket | undefined)?.writableLength ?? 0;
    // writeBuffer is public in engine.io's JavaScript, only its typings mark it private (and untyped).
    const queued: Array<{ data?: unknown }> = conn['writeBuffer'];
    for (const packet of queued) {
      const data: unknown = packet.data;
      bytes += typeof data === 'string' ? data.length : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength : 0;
    }
    most = Math.max(most, bytes);
  }
  return most;
}
