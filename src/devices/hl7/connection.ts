// One MLLP byte stream (an accepted socket or an outgoing one): deframes,
// hands frames to the handler strictly in order, and writes replies in order.
// Reading pauses while too many frames wait, so a fast sender cannot grow the
// queue without bound.

import type { Socket } from 'node:net';
import { MllpDeframer } from './framing.js';

const MAX_QUEUED_FRAMES = 64;

export interface ConnectionHooks {
  /** Returns the reply to write (already framed), or undefined. */
  onFrame(frame: Buffer, receivedAt: number): Promise<Buffer | undefined>;
  onDiscarded(bytes: number, oversizeFrames: number): void;
}

export class MllpConnection {
  readonly socket: Socket;
  readonly #deframer: MllpDeframer;
  readonly #hooks: ConnectionHooks;
  readonly #queue: Array<{ frame: Buffer; receivedAt: number }> = [];
  #draining = false;
  #closed = false;
  /** Set by the owner before it closes the socket on purpose (the status reason). */
  closeReason: string | undefined;

  constructor(socket: Socket, maxFrameBytes: number, hooks: ConnectionHooks) {
    this.socket = socket;
    this.#deframer = new MllpDeframer(maxFrameBytes);
    this.#hooks = hooks;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      this.#closed = true;
      this.#queue.length = 0;
    });
    // Errors end in 'close'; the owner logs them.
    socket.on('error', () => {});
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames received and not yet answered: the sender waits on us, not the other way round. */
  get busy(): boolean {
    return this.#draining || this.#queue.length > 0;
  }

  #onData(chunk: Buffer): void {
    const receivedAt = Date.now();
    const { frames, discarded, oversize } = this.#deframer.push(chunk);
    if (discarded > 0 || oversize > 0) this.#hooks.onDiscarded(discarded, oversize);
    for (const frame of frames) this.#queue.push({ frame, receivedAt });
    if (this.#queue.length >= MAX_QUEUED_FRAMES) this.socket.pause();
    if (!this.#draining && this.#queue.length > 0) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const { frame, receivedAt } = this.#queue.shift()!;
        let reply: Buffer | undefined;
        try {
          reply = await this.#hooks.onFrame(frame, receivedAt);
        } catch {
          reply = undefined; // the handler answers its own failures; never let one kill the stream
        }
        if (reply && !this.#closed && this.socket.writable) this.socket.write(reply);
        if (this.#queue.length < MAX_QUEUED_FRAMES / 2 && this.socket.isPaused()) this.socket.resume();
      }
    } finally {
      this.#draining = false;
    }
  }
}
