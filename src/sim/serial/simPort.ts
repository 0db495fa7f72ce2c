import { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';
import { splitRandomly } from './faults.js';
import type { Random } from '../random.js';

export interface SimPortOptions {
  path: string;
  baudRate: number;
  parity: 'none' | 'odd' | 'even';
  /** Write each batch in 2-4 pieces spread over splitSpreadMs. */
  split: boolean;
  splitSpreadMs: number;
  /** Close the port every this many ms (0 = never) ... */
  disconnectEveryMs: number;
  /** ... for this long. */
  disconnectForMs: number;
}

export interface SimPortEvents {
  /** Bytes the driver sent to the device (e.g. Cyton 'b' / 's'). */
  command: [Buffer];
  error: [Error];
}

/**
 * The simulated device's end of the serial link. Writes are dropped while the
 * port is closed (a real device keeps sampling while unplugged). lock:false and
 * no modem-line calls, so it works on socat ptys.
 */
export class SimPort extends EventEmitter<SimPortEvents> {
  #port: SerialPort | undefined;
  #stopped = false;
  #disconnectTimer: NodeJS.Timeout | undefined;
  readonly #pieceTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly options: SimPortOptions,
    private readonly random: Random,
  ) {
    super();
  }

  get isOpen(): boolean {
    return this.#port?.isOpen === true;
  }

  async open(): Promise<void> {
    const port = new SerialPort({
      path: this.options.path,
      baudRate: this.options.baudRate,
      parity: this.options.parity,
      dataBits: 8,
      stopBits: 1,
      lock: false,
      autoOpen: false,
    });
    port.on('data', (chunk: Buffer) => this.emit('command', chunk));
    port.on('error', (err: Error) => this.emit('error', err));
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    this.#port = port;
    if (this.options.disconnectEveryMs > 0 && !this.#disconnectTimer) this.#scheduleDisconnect();
  }

  /** Writes now, or in pieces when splitting; false when the port is closed. */
  write(bytes: Buffer): boolean {
    const port = this.#port;
    if (!port?.isOpen || bytes.length === 0) return false;
    if (!this.options.split) {
      port.write(bytes);
      return true;
    }
    const pieces = splitRandomly(bytes, this.random);
    pieces.forEach((piece, i) => {
      if (i === 0) return void port.write(piece);
      const timer = setTimeout(() => {
        this.#pieceTimers.delete(timer);
        if (port.isOpen) port.write(piece);
      }, (this.options.splitSpreadMs * i) / pieces.length);
      this.#pieceTimers.add(timer);
    });
    return true;
  }

  async close(): Promise<void> {
    this.#stopped = true;
    if (this.#disconnectTimer) clearTimeout(this.#disconnectTimer);
    for (const timer of this.#pieceTimers) clearTimeout(timer);
    this.#pieceTimers.clear();
    await this.#closePort();
  }

  async #closePort(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      port.drain(() => port.close(() => {
        clearTimeout(timer);
        resolve();
      }));
    });
  }

  #scheduleDisconnect(): void {
    this.#disconnectTimer = setTimeout(async () => {
      await this.#closePort();
      this.#disconnectTimer = setTimeout(async () => {
        if (this.#stopped) return;
        try {
          await this.open();
        } catch (err) {
          this.emit('error', err as Error);
        }
        this.#scheduleDisconnect();
      }, this.options.disconnectForMs);
    }, this.options.disconnectEveryMs);
  }
}
