// Server mode: a TCP listener for HL7 gateways and monitors (PCD-01 senders).

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../../telemetry/logger.js';
import { MllpConnection, type ConnectionHooks } from './connection.js';

export interface ListenerHooks {
  onFrame(frame: Buffer, receivedAt: number, connection: MllpConnection): Promise<Buffer | undefined>;
  onDiscarded(bytes: number, oversizeFrames: number): void;
  onClose(connection: MllpConnection): void;
}

const MAX_CONNECTIONS = 64;

export class Hl7Listener {
  readonly host: string;
  readonly port: number;
  readonly #maxFrameBytes: number;
  readonly #hooks: ListenerHooks;
  readonly #log: Logger;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  constructor(host: string, port: number, maxFrameBytes: number, hooks: ListenerHooks, log: Logger) {
    this.host = host;
    this.port = port;
    this.#maxFrameBytes = maxFrameBytes;
    this.#hooks = hooks;
    this.#log = log;
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
      server.maxConnections = MAX_CONNECTIONS;
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.#log.error({ err: err.message }, 'hl7 listener error'));
        this.#server = server;
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
    this.#sockets.add(socket);
    socket.setKeepAlive(true, 10_000);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#log.info({ peer, connections: this.#sockets.size }, 'hl7 sender connected');
    const hooks: ConnectionHooks = {
      onFrame: (frame, receivedAt) => this.#hooks.onFrame(frame, receivedAt, connection),
      onDiscarded: (bytes, oversize) => this.#hooks.onDiscarded(bytes, oversize),
    };
    const connection = new MllpConnection(socket, this.#maxFrameBytes, hooks);
    socket.on('error', (err) => this.#log.warn({ peer, err: err.message }, 'hl7 sender socket error'));
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#log.info({ peer, connections: this.#sockets.size }, 'hl7 sender disconnected');
      this.#hooks.onClose(connection);
    });
  }
}
