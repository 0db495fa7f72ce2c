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
): types.TransportListenInfo[] {
  const ips = !isUnspecified(listenIp) || announcedIp ? [listenIp] : ipv4Addresses(interfaces).map((i) => i.address);
  if (ips.length === 0) ips.push('127.0.0.1');
  return ips.flatMap((ip) =>
    (['udp', 'tcp'] as const).map((protocol) => ({ protocol, ip, ...(announcedIp ? { announcedAddress: announcedIp } : {}), port })),
  );
}

/**
 * Receive buffer of an ingest's RTP socket. A capture writes a keyframe's
 * packets back to back: ffmpeg sent a 201 KB VP8 keyframe as 170 packets at
 * once, and Linux's default buffer (net.core.rmem_default, 212 992 B, about
 * 90 packets of 1200 B by skb truesize) dropped 78 of them before the worker
 * read any (docs/PERFORMANCE.md). 4 MiB holds a keyframe many times that size
 * (~1700 such packets); the kernel caps the request at net.core.rmem_max.
 */
export const INGEST_RECV_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * The listen infos of an ingest (comedia PlainTransport): UDP on listenIp,
 * RTP and RTCP on separate ports taken from this worker's slice of the RTC
 * port range, the RTP socket with a receive buffer sized for keyframe bursts.
 */
export function ingestListenInfos(
  listenIp: string,
  announcedIp: string | null,
  portRange: { min: number; max: number },
): { listenInfo: types.TransportListenInfo; rtcpListenInfo: types.TransportListenInfo } {
  const base = { protocol: 'udp' as const, ip: listenIp, ...(announcedIp ? { announcedAddress: announcedIp } : {}), portRange };
  // The RTCP socket carries a few small reports per second: the default buffer suffices.
  return { listenInfo: { ...base, recvBufferSize: INGEST_RECV_BUFFER_BYTES }, rtcpListenInfo: base };
}

/** The address a remote sender (an RTP ingest) should send to. */
export function reachableAddress(listenIp: string, announcedIp: string | null, interfaces: Interfaces = networkInterfaces()): string {
  if (announcedIp) return announcedIp;
  if (!isUnspecified(listenIp)) return listenIp;
  return ipv4Addresses(interfaces).find((i) => !i.internal)?.address ?? '127.0.0.1';
}
