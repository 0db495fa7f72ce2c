// Sends HL7 messages to an MLLP listener the way a careful device does: one
// message (or a burst window) outstanding, resend until ACK AA, reconnect when
// the link drops. Injects faults on request.

import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { SentValues, SimulatorEvents } from '../simulator.js';
import type { BuiltMessage } from './messages.js';
import { FrameCollector, fieldOf, wrap } from './wire.js';

export interface SenderFaults {
  /** Probability that garbage (or a truncated frame) precedes a frame. */
  corruptRate: number;
  /** Write each frame in several pieces. */
  split: boolean;
  /** Messages written together (and outstanding) at once. */
  burst: number;
  /** Drop the connection this often (0 = never). */
  disconnectEveryMs: number;
}

export interface SenderOptions {
  host: string;
  port: number;
  ackTimeoutMs: number;
  reconnectMs: number;
  /** Cap on messages waiting for a link; the oldest are dropped beyond it. */
  maxQueued: number;
  faults: SenderFaults;
  random: () => number;
}

interface Pending {
  message: BuiltMessage;
  timer?: NodeJS.Timeout;
}

export class MllpSender extends EventEmitter<SimulatorEvents & { ack: [code: string, controlId: string]; connected: [] }> {
  readonly #options: SenderOptions;
  readonly #queue: Pending[] = [];
  readonly #inFlight = new Map<string, Pending>();
  #socket: Socket | undefined;
  #connected = false;
  #stopped = false;
  #writeChain: Promise<void> = Promise.resolve();
  #reconnectTimer: NodeJS.Timeout | undefined;
  #disconnectTimer: NodeJS.Timeout | undefined;
  /** Counters for tests and the console. */
  readonly stats = { sent: 0, acked: 0, resent: 0, rejected: 0, dropped: 0, connects: 0 };

  constructor(options: SenderOptions) {
    super();
    this.#options = options;
  }

  start(): void {
    this.#connect();
  }

  enqueue(message: BuiltMessage): void {
    this.#queue.push({ message });
    while (this.#queue.length > this.#options.maxQueued) {
      this.#queue.shift();
      this.stats.dropped++;
    }
    this.#pump();
  }

  get pending(): number {
    return this.#queue.length + this.#inFlight.size;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#disconnectTimer);
    for (const p of this.#inFlight.values()) clearTimeout(p.timer);
    const socket = this.#socket;
    if (socket && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    const socket = connect({ host: this.#options.host, port: this.#options.port });
    this.#socket = socket;
    socket.setNoDelay(true);
    const collector = new FrameCollector();
    socket.on('connect', () => {
      this.#connected = true;
      this.stats.connects++;
      this.emit('connected');
      // Whatever was outstanding on the old link is resent first, in order.
      const outstanding = [...this.#inFlight.values()];
      this.#inFlight.clear();
      for (const p of outstanding) clearTimeout(p.timer);
      this.#queue.unshift(...outstanding);
      this.stats.resent += outstanding.length;
      this.#pump();
    });
    socket.on('data', (chunk: Buffer) => {
      for (const reply of collector.push(chunk)) this.#onReply(reply);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#connected = false;
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopped) return;
      this.#reconnectTimer = setTimeout(() => this.#connect(), this.#options.reconnectMs);
    });
    if (this.#options.faults.disconnectEveryMs > 0 && !this.#disconnectTimer) {
      this.#disconnectTimer = setInterval(() => this.#socket?.destroy(), this.#options.faults.disconnectEveryMs);
    }
  }

  #onReply(reply: string): void {
    const code = fieldOf(reply, 'MSA', 1);
    const controlId = fieldOf(reply, 'MSA', 2);
    const pending = this.#inFlight.get(controlId);
    this.emit('ack', code, controlId);
    if (!pending) return; // a late duplicate ACK, or the answer to injected garbage
    clearTimeout(pending.timer);
    this.#inFlight.delete(controlId);
    if (code === 'AA') {
      this.stats.acked++;
      this.emit('sent', pending.message.sent satisfies SentValues);
    } else if (code === 'AE') {
      // Application error (e.g. the gateway could not store it): try again shortly.
      setTimeout(() => this.#requeue(pending), this.#options.reconnectMs);
    } else {
      this.stats.rejected++;
      this.emit('error', new Error(`message ${controlId} refused with ${code || 'no code'}: ${fieldOf(reply, 'MSA', 3)}`));
    }
    this.#pump();
  }

  #requeue(pending: Pending): void {
    if (this.#stopped) return;
    this.stats.resent++;
    this.#queue.unshift(pending);
    this.#pump();
  }

  #pump(): void {
    if (!this.#connected || this.#stopped) return;
    const batch: Pending[] = [];
    while (this.#queue.length > 0 && this.#inFlight.size + batch.length < Math.max(1, this.#options.faults.burst)) {
      batch.push(this.#queue.shift()!);
    }
    if (batch.length === 0) return;
    for (const p of batch) {
      this.#inFlight.set(p.message.controlId, p);
      p.timer = setTimeout(() => this.#onAckTimeout(p), this.#options.ackTimeoutMs);
    }
    this.stats.sent += batch.length;
    const bytes = Buffer.concat(batch.flatMap((p) => [...this.#noise(), wrap(p.message.text)]));
    this.#write(bytes);
  }

  #onAckTimeout(p: Pending): void {
    if (this.#inFlight.get(p.message.controlId) !== p) return;
    // Resend on the same link; if the link is dead, 'close' will resend on the next one.
    this.stats.resent++;
    p.timer = setTimeout(() => this.#onAckTimeout(p), this.#options.ackTimeoutMs);
    this.#write(wrap(p.message.text));
  }

  /** Garbage or a cut-off frame start, with probability corruptRate. */
  #noise(): Buffer[] {
    const { corruptRate } = this.#options.faults;
    const random = this.#options.random;
    if (corruptRate <= 0 || random() >= corruptRate) return [];
    if (random() < 0.5) {
      const junk = Buffer.alloc(1 + Math.floor(random() * 40));
      // Noise without frame bytes, so it cannot form a whole bogus frame.
      for (let i = 0; i < junk.length; i++) junk[i] = 0x20 + Math.floor(random() * 0x5f);
      return [junk];
    }
    // A frame that starts and never ends: the listener must drop it at the next start byte.
    return [Buffer.from('\x0bMSH|^~\\&|TRUNCATED|', 'latin1')];
  }

  #write(bytes: Buffer): void {
    const socket = this.#socket;
    if (!socket) return;
    if (!this.#options.faults.split) {
      socket.write(bytes);
      return;
    }
    const random = this.#options.random;
    this.#writeChain = this.#writeChain.then(async () => {
      let at = 0;
      while (at < bytes.length) {
        const size = Math.max(1, Math.floor(random() * Math.min(bytes.length, 400)));
        if (socket.destroyed) return;
        socket.write(bytes.subarray(at, at + size));
        at += size;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    });
  }
}
