// Server mode: a TCP listener for HL7 gateways and monitors (PCD-01 senders).

import { BlockList, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { parseSender } from './config.js';
import { MllpConnection, type ConnectionHooks } from './connection.js';

export interface ListenerHooks {
  onFrame(frame: Buffer, receivedAt: number, connection: MllpConnection): Promise<Buffer | undefined>;
  onDiscarded(bytes: number, oversizeFrames: number): void;
  onClose(connection: MllpConnection): void;
}

export interface ListenerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  /** A connection with no byte received for this long (and no frame in hand) is closed. */
  idleTimeoutMs: number;
  /** Concurrent connections; more are refused at once. */
  maxConnections: number;
  /** Addresses/CIDR blocks allowed to connect; empty = any. Validated by the config schema. */
  allowedSenders: readonly string[];
}

/** What the listener refused or cut, since it was created. */
export interface ListenerCounters {
  /** Connections closed at once because the listener was at maxConnections. */
  refusedOverCap: number;
  /** Connections closed at once because the sender is not on allowedSenders. */
  refusedSender: number;
  /** Connections closed after idleTimeoutMs without a byte. */
  idleTimeouts: number;
}

/** A refused address is logged at most this often, so a connect loop cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
const MAX_REFUSAL_LOG_ENTRIES = 1024;

/** '::ffff:10.0.5.21' (a v4 peer on a dual-stack listener) -> '10.0.5.21'. */
function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** 127/8, ::1 and 'localhost': reachable from this PC only. */
export function isLoopbackHost(host: string): boolean {
  const plain = plainAddress(host);
  if (plain === 'localhost' || plain === '::1') return true;
  return isIP(plain) === 4 && plain.startsWith('127.');
}

export class Hl7Listener {
  readonly host: string;
  readonly port: number;
  readonly counters: ListenerCounters = { refusedOverCap: 0, refusedSender: 0, idleTimeouts: 0 };
  readonly #options: ListenerOptions;
  readonly #allow: BlockList | undefined;
  readonly #hooks: ListenerHooks;
  readonly #log: Logger;
  readonly #sockets = new Set<Socket>();
  readonly #refusalLoggedAt = new Map<string, number>();
  #server: Server | undefined;

  constructor(options: ListenerOptions, hooks: ListenerHooks, log: Logger) {
    this.host = options.host;
    this.port = options.port;
    this.#options = options;
    this.#hooks = hooks;
    this.#log = log;
    if (options.allowedSenders.length > 0) {
      // BlockList used as an allow list: check() answers "is it in one of these blocks".
      const allow = new BlockList();
      for (const entry of options.allowedSenders) {
        const parsed = parseSender(entry);
        if (!parsed) throw new Error(`allowedSenders: ${JSON.stringify(entry)} is not an IP address or CIDR block`);
        allow.addSubnet(parsed.address, parsed.prefix, parsed.family);
      }
      this.#allow = allow;
    }
  }

  get address(): AddressInfo | undefined {
    const address = this.#server?.address();
    return address && typeof address === 'object' ? address : undefined;
  }

  get connectionCount(): number {
    return this.#sockets.size;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.#accept(socket));
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.#log.error({ err: err.message }, 'hl7 listener error'));
        this.#server = server;
        if (!this.#allow && !isLoopbackHost(this.host)) {
          this.#log.warn({ host: this.host }, 'hl7 listener binds a non-loopback address with no allowedSenders: any host on the network can send readings');
        }
        resolve(this.address!);
      });
    });
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const address = plainAddress(socket.remoteAddress ?? '');
    // Refusals happen before a single byte is read: no frame from an unknown or
    // excess sender ever reaches the processor.
    if (this.#allow && !this.#isAllowed(address)) {
      this.counters.refusedSender++;
      socket.on('error', () => {});
      socket.destroy();
      this.#logRefusal(address, 'hl7 sender not in allowedSenders: connection closed');
      return;
    }
    if (this.#sockets.size >= this.#options.maxConnections) {
      this.counters.refusedOverCap++;
      socket.on('error', () => {});
      socket.destroy();
      this.#logRefusal(address, 'hl7 listener at maxConnections: connection refused', { maxConnections: this.#options.maxConnections });
      return;
    }
    this.#sockets.add(socket);
    socket.setKeepAlive(true, 10_000);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#log.info({ peer, connections: this.#sockets.size }, 'hl7 sender connected');
    const hooks: ConnectionHooks = {
      onFrame: (frame, receivedAt) => this.#hooks.onFrame(frame, receivedAt, connection),
      onDiscarded: (bytes, oversize) => this.#hooks.onDiscarded(bytes, oversize),
    };
    const connection = new MllpConnection(socket, this.#options.maxFrameBytes, hooks);
    // Node's socket timeout re-arms on every byte read or written. A reply we are
    // still working on (the sink holding a frame) is our delay, not the sender's
    // silence: re-arm instead of cutting.
    // (A callback passed to setTimeout is a once-listener: 'on' keeps it across re-arms.)
    socket.setTimeout(this.#options.idleTimeoutMs);
    socket.on('timeout', () => {
      if (connection.busy) {
        socket.setTimeout(this.#options.idleTimeoutMs);
        return;
      }
      this.counters.idleTimeouts++;
      this.#log.info({ peer, idleTimeoutMs: this.#options.idleTimeoutMs }, 'hl7 sender idle: connection closed');
      connection.closeReason = `sender idle for ${Math.round(this.#options.idleTimeoutMs / 1000)} s, disconnected`;
      socket.destroy();
    });
    socket.on('error', (err) => this.#log.warn({ peer, err: err.message }, 'hl7 sender socket error'));
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#log.info({ peer, connections: this.#sockets.size }, 'hl7 sender disconnected');
      this.#hooks.onClose(connection);
    });
  }

  #isAllowed(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.#allow!.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** Address only (no port: it changes on every retry and would defeat the throttle). */
  #logRefusal(address: string, message: string, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    const last = this.#refusalLoggedAt.get(address);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return;
    if (this.#refusalLoggedAt.size >= MAX_REFUSAL_LOG_ENTRIES) this.#refusalLoggedAt.clear();
    this.#refusalLoggedAt.set(address, now);
    this.#log.warn({ address, refusedSender: this.counters.refusedSender, refusedOverCap: this.counters.refusedOverCap, ...extra }, message);
  }
}
