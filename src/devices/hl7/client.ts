// Client mode for legacy Mindray PDS monitors (HL7 2.3.1): connect out, send
// the QRY^R02 subscription, keep the 3 s heartbeat, read the ORU^R01 stream,
// and reconnect with backoff when the link drops or goes silent.

import { connect, type Socket } from 'node:net';
import { Backoff } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import { MllpConnection } from './connection.js';
import { LEGACY_PDS_CODES } from './codes.js';
import { mllpFrame } from './framing.js';
import { formatHl7Time } from './time.js';

export interface PdsClientOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  heartbeatMs: number;
  /** No frame for this long: the link is treated as dead and reopened. */
  silenceMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  offsetMinutes: number;
}

export interface PdsClientHooks {
  onFrame(frame: Buffer, receivedAt: number): Promise<Buffer | undefined>;
  onDiscarded(bytes: number, oversizeFrames: number): void;
  /** reconnect is true for every connection after the first. */
  onConnected(reconnect: boolean): void;
  onDisconnected(reason: string): void;
}

/** QRY^R02 asking for every parameter in the legacy code table. */
export function pdsQuery(controlId: string, now: number, offsetMinutes: number): string {
  const ts = formatHl7Time(now, offsetMinutes).slice(0, 14);
  const filters = [...LEGACY_PDS_CODES.keys()].join('&');
  return [
    `MSH|^~\\&|Mindray|PDSTest|||||QRY^R02|${controlId}|P|2.3.1`,
    `QRD|${ts}|R|I|${controlId}|||||RES`,
    `QRF|MON||||0&0^1^1^0^${filters}`,
  ].join('\r') + '\r';
}

export function pdsHeartbeat(controlId: string): string {
  return `MSH|^~\\&|Mindray|PDSTest|||||ORU^R01|${controlId}|P|2.3.1\r`;
}

export class PdsClient {
  readonly #options: PdsClientOptions;
  readonly #hooks: PdsClientHooks;
  readonly #log: Logger;
  #socket: Socket | undefined;
  #stopped = true;
  #everConnected = false;
  readonly #backoff: Backoff;
  #controlSeq = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #silenceTimer: NodeJS.Timeout | undefined;

  constructor(options: PdsClientOptions, hooks: PdsClientHooks, log: Logger) {
    this.#options = options;
    this.#hooks = hooks;
    this.#log = log;
    // +-20 % jitter so several agents do not hammer a rebooted monitor in step.
    this.#backoff = new Backoff({ minMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs, jitter: 0.2 });
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#clearLinkTimers();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    const { host, port, connectTimeoutMs } = this.#options;
    const socket = connect({ host, port });
    this.#socket = socket;
    socket.setTimeout(connectTimeoutMs, () => socket.destroy(new Error('connect timeout')));
    let lastError = 'connection closed';
    socket.on('error', (err) => {
      lastError = err.message;
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.setKeepAlive(true, 10_000);
      const reconnect = this.#everConnected;
      this.#everConnected = true;
      this.#log.info({ host, port, reconnect }, 'pds monitor connected');
      this.#hooks.onConnected(reconnect);
      new MllpConnection(socket, this.#options.maxFrameBytes, {
        onFrame: async (frame, receivedAt) => {
          this.#backoff.reset();
          this.#armSilence(socket);
          return this.#hooks.onFrame(frame, receivedAt);
        },
        onDiscarded: (bytes, oversize) => this.#hooks.onDiscarded(bytes, oversize),
      });
      socket.write(mllpFrame(pdsQuery(this.#nextControlId(), Date.now(), this.#options.offsetMinutes)));
      this.#heartbeatTimer = setInterval(() => {
        if (socket.writable) socket.write(mllpFrame(pdsHeartbeat(this.#nextControlId())));
      }, this.#options.heartbeatMs);
      this.#armSilence(socket);
    });
    socket.once('close', () => {
      this.#clearLinkTimers();
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopped) return;
      this.#log.warn({ host, port, reason: lastError }, 'pds monitor link down');
      this.#hooks.onDisconnected(`connection to ${host}:${port} down: ${lastError}`);
      this.#scheduleReconnect();
    });
  }

  #armSilence(socket: Socket): void {
    clearTimeout(this.#silenceTimer);
    this.#silenceTimer = setTimeout(() => socket.destroy(new Error('monitor silent')), this.#options.silenceMs);
  }

  #clearLinkTimers(): void {
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#silenceTimer);
    this.#heartbeatTimer = undefined;
    this.#silenceTimer = undefined;
  }

  #scheduleReconnect(): void {
    this.#retryTimer = setTimeout(() => this.#connect(), this.#backoff.next());
  }

  #nextControlId(): string {
    this.#controlSeq = (this.#controlSeq + 1) % 1_000_000;
    return String(this.#controlSeq);
  }
}
