import { networkInterfaces } from 'node:os';
import type { types } from 'mediasoup';

type Interfaces = ReturnType<typeof networkInterfaces>;

export function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

function ipv4Addresses(interfaces: Interfaces): { address: string; internal: boolean }[] {
  return Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => ({ address: i.address, internal: i.internal }));
}

/**
 * The WebRtcServer's listen entries for one port. An ICE candidate must carry
 * an address the browser can reach: with an announced address, listen on
 * listenIp and announce it; with an unspecified listenIp (0.0.0.0) and none
 * announced, listen on every local IPv4 address, so each becomes a candidate
 * (loopback for a browser on the hub machine, the LAN address for the ward).
 */
export function webRtcListenInfos(
  listenIp: string,
  announcedIp: string | null,
  port: number,
  interfaces: Interfaces = networkInterfaces(),
): types.WebRtcServerListenInfo[] {
  const ips = !isUnspecified(listenIp) || announcedIp ? [listenIp] : ipv4Addresses(interfaces).map((i) => i.address);
  if (ips.length === 0) ips.push('127.0.0.1');
  return ips.flatMap((ip) =>
    (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip, announcedIp: announcedIp ?? undefined, port })),
  );
}

/** The address a remote sender (an RTP ingest) should send to. */
export function reachableAddress(listenIp: string, announcedIp: string | null, interfaces: Interfaces = networkInterfaces()): string {
  if (announcedIp) return announcedIp;
  if (!isUnspecified(listenIp)) return listenIp;
  return ipv4Addresses(interfaces).find((i) => !i.internal)?.address ?? '127.0.0.1';
}
