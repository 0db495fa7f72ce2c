// The client's address, for the per-IP limits and the audit log. Behind a
// reverse proxy every TCP peer is the proxy; its X-Forwarded-For names the
// client. That header is believed only when the peer is a configured trusted
// proxy (`http.trustedProxies`), and then read right to left, skipping trusted
// hops, as express does: a client can prepend anything it likes to the header,
// but the entry the last trusted proxy appended is the address it saw.

import { BlockList, isIP } from 'node:net';
import type { Express, Request } from 'express';
import type { Server, Socket } from 'socket.io';

export class TrustedProxies {
  readonly #list = new BlockList();
  readonly size: number;

  /** `entries`: IPs and CIDRs (`10.0.0.0/8`, `::1`); an invalid one throws, naming it. */
  constructor(entries: readonly string[] = []) {
    this.size = entries.length;
    for (const entry of entries) {
      const [ip = '', bits, extra] = entry.split('/');
      const family = isIP(ip);
      const prefix = bits === undefined ? undefined : Number(bits);
      if (family === 0 || extra !== undefined || (prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)))) {
        throw new Error(`not an IP address or CIDR: ${entry}`);
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.#list.addAddress(ip, type);
      else this.#list.addSubnet(ip, prefix, type);
    }
  }

  trusts(address: string): boolean {
    if (this.size === 0) return false;
    const ip = unmapped(address);
    const family = isIP(ip);
    return family !== 0 && this.#list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client behind `peer` (the TCP peer) given the request's X-Forwarded-For. */
  clientOf(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    let client = unmapped(peer ?? 'unknown');
    if (!this.trusts(client) || forwardedFor === undefined) return client;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((h) => h.trim());
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapped(hops[i] ?? '');
      // A malformed entry is not an address; the last good one is the best we know.
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!this.trusts(hop)) return hop;
    }
    return client;
  }
}

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) is `10.1.2.3`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

const byServer = new WeakMap<Server, TrustedProxies>();
const bySocket = new WeakMap<Socket, string>();

/** Gives a socket.io server its trusted proxies (once, at start); sockets of a server without are taken at their TCP peer. */
export function trustProxies(io: Server, proxies: TrustedProxies): void {
  byServer.set(io, proxies);
}

/** A socket.io client's address (signaling, /uplink): its handshake's peer, or the forwarded client behind a trusted proxy. */
export function socketClientAddress(socket: Socket): string {
  let address = bySocket.get(socket);
  if (address === undefined) {
    const proxies = byServer.get(socket.nsp.server);
    const peer = socket.handshake.address;
    address = proxies ? proxies.clientOf(peer, socket.handshake.headers['x-forwarded-for']) : unmapped(peer);
    bySocket.set(socket, address);
  }
  return address;
}

const byApp = new WeakMap<object, TrustedProxies>();

/**
 * Gives an express app its trusted proxies: `req.ip`, `req.protocol` and
 * `req.hostname` then believe X-Forwarded-* from those peers only (express's
 * `trust proxy`, with the same test as the sockets).
 */
export function trustProxiesForApp(app: Express, proxies: TrustedProxies): void {
  byApp.set(app, proxies);
  app.set('trust proxy', (address: string) => proxies.trusts(address));
}

/** An HTTP client's address: the TCP peer, or the forwarded client behind a trusted proxy. */
export function requestClientAddress(req: Request): string {
  const proxies = byApp.get(req.app);
  const peer = req.socket.remoteAddress;
  return proxies ? proxies.clientOf(peer, req.headers['x-forwarded-for']) : unmapped(peer ?? 'unknown');
}
