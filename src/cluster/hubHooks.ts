import type { HoichanConfig } from '../config/schema.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { WorkerPool } from '../media/WorkerPool.js';
import { isUnspecified, reachableAddress } from '../media/addresses.js';
import type { HubTelemetry } from '../telemetry/HubTelemetry.js';
import type { HubLoad } from './messages.js';
import type { PipeAddress } from './pipes.js';

/** What the directory shows of this hub's load; bitrates from the last stats interval of /api/ops. */
export function clusterLoad(pool: WorkerPool, conferences: ConferenceManager, telemetry: HubTelemetry): Omit<HubLoad, 'pipesIn' | 'pipesOut'> {
  let peers = 0;
  let consumers = 0;
  for (const c of conferences.list()) {
    peers += c.peers.length;
    for (const p of c.peers) consumers += p.consumers.size;
  }
  let bitrateIn = 0;
  let bitrateOut = 0;
  for (const c of telemetry.ops().conferences) {
    for (const p of c.peers) {
      bitrateIn += p.bitrateIn;
      bitrateOut += p.bitrateOut;
    }
  }
  return { workers: pool.size, conferences: conferences.list().length, peers, consumers, bitrateIn, bitrateOut };
}

/**
 * Pipe transports listen on media.listenIp; other hubs send to
 * cluster.mediaAddress, else media.announcedIp, else the listen address
 * (an unspecified one resolved to this machine's first non-internal IPv4).
 */
export function pipeAddress(config: HoichanConfig): PipeAddress {
  const { listenIp, announcedIp } = config.media;
  const announced = config.cluster.mediaAddress ?? (announcedIp !== null || isUnspecified(listenIp) ? reachableAddress(listenIp, announcedIp) : listenIp);
  return { listenIp, announced };
}
