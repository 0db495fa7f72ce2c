import type { types } from 'mediasoup';
import type { Hub } from '../../src/hub/Hub.js';
import { startTestHub, token } from '../support/hub.js';

/** Fast heartbeats for tests: a hub that stops is gone within ttlMs + heartbeatMs (1.3 s here; 8 s with the defaults). */
export const FAST_CLUSTER = { heartbeatMs: 300, ttlMs: 1000, requestTimeoutMs: 2000 };

/** An in-process hub of a cluster on `redisUrl`. */
export function startClusterHub(redisUrl: string, hubId: string, region = 'north', cluster: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Hub> {
  return startTestHub({ redis: { url: redisUrl }, cluster: { hubId, region, ...FAST_CLUSTER, ...cluster }, ...extra } as Parameters<typeof startTestHub>[0]);
}

export interface ClusterView {
  enabled: boolean;
  hubId?: string;
  redis?: string;
  hubs: Array<{ hubId: string; region: string; url: string; mediaAddress: string; draining: boolean; load: Record<string, number>; conferences: string[] }>;
  conferences: Array<{ conferenceId: string; hubs: string[] }>;
}

export async function clusterView(hub: Hub): Promise<ClusterView> {
  const res = await fetch(`${hub.url}/api/cluster`, { headers: { authorization: `Bearer ${token('engineer', '*', 'ops')}` } });
  if (res.status !== 200) throw new Error(`GET /api/cluster: ${res.status} ${await res.text()}`);
  return (await res.json()) as ClusterView;
}

export function hubIds(view: ClusterView): string[] {
  return view.hubs.map((h) => h.hubId).sort();
}

/** A small VP8 RTP packet for an ingest; every 50th starts a keyframe. */
export function rtpPacket(seq: number, ssrc: number, payloadType: number): Buffer {
  const packet = Buffer.alloc(200, 0x5a);
  packet[0] = 0x80;
  packet[1] = 0x80 | payloadType;
  packet.writeUInt16BE(seq & 0xffff, 2);
  packet.writeUInt32BE((seq * 3000) >>> 0, 4);
  packet.writeUInt32BE(ssrc, 8);
  packet[12] = 0x10;
  packet[13] = seq % 50 === 0 ? 0x00 : 0x01;
  return packet;
}

/** RTP packets a producer (e.g. the pipe producer on the far hub) has received, from its stats. */
export async function packetsReceived(producer: types.Producer): Promise<number> {
  const stats = await producer.getStats();
  return stats.reduce((n, s) => n + ((s as { packetCount?: number }).packetCount ?? 0), 0);
}
