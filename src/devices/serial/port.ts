import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import { Backoff } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';

export interface ReconnectingPortOptions {
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  /** Written after every open (e.g. Cyton 'b' to start streaming). */
  onOpenWrite?: Buffer;
  /** Written before a deliberate close (e.g. Cyton 's'). */
  onStopWrite?: Buffer;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How often an open port's path is checked (USB unplug removes it). */
  pathCheckMs: number;
}

export type PortState = { open: true } | { open: false; reason: string };

export interface ReconnectingPortEvents {
  data: [chunk: Buffer, receivedAt: number];
  state: [PortState];
}

const CLOSE_TIMEOUT_MS = 2000;

/**
 * A serial port that keeps itself open: it waits for the path to exist, opens
 * it, and after an unplug or error retries with exponential backoff until
 * stop(). Opened with lock:false and without touching modem lines (set/get
 * fail with ENOTTY on ptys, and reopening a locked port fails on Node >= 20.3
 * with io_uring).
 */
export class ReconnectingPort extends EventEmitter<ReconnectingPortEvents> {
  #port: SerialPort | undefined;
  #stopped = true;
  readonly #backoff: Backoff;
  #retryTimer: NodeJS.Timeout | undefined;
  #pathTimer: NodeJS.Timeout | undefined;
  #state: PortState = { open: false, reason: 'not started' };
  #opens = 0;

  constructor(
    private readonly options: ReconnectingPortOptions,
    private readonly log: Logger,
  ) {
    super();
    // No jitter: one agent and one local port, nobody to collide with.
    this.#backoff = new Backoff({ minMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs });
  }

  get state(): PortState {
    return this.#state;
  }

  /** Successful opens so far (the first one is not a reconnect). */
  get opens(): number {
    return this.#opens;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const port = this.#port;
    if (port?.isOpen && this.options.onStopWrite) {
      await writeQuietly(port, this.options.onStopWrite);
    }
    await this.#close(port);
    this.#setState({ open: false, reason: 'stopped' });
  }

  /** Sends bytes to the device; false when the port is not open. */
  async write(bytes: Buffer): Promise<boolean> {
    const port = this.#port;
    if (!port?.isOpen) return false;
    return writeQuietly(port, bytes);
  }

  #connect(): void {
    if (this.#stopped) return;
    const { path } = this.options;
    if (!existsSync(path)) {
      this.#setState({ open: false, reason: `port ${path} not found` });
      this.#scheduleRetry();
      return;
    }
    const port = new SerialPort({
      path,
      baudRate: this.options.baudRate,
      dataBits: this.options.dataBits,
      parity: this.options.parity,
      stopBits: this.options.stopBits,
      lock: false,
      autoOpen: false,
    });
    this.#port = port;
    port.on('data', (chunk: Buffer) => this.emit('data', chunk, Date.now()));
    port.on('error', (err: Error) => this.log.warn({ path, err: err.message }, 'serial port error'));
    port.on('close', (err?: Error & { disconnected?: boolean }) => this.#onClosed(port, err));
    port.open((err) => {
      if (err) {
        this.#port = undefined;
        this.#setState({ open: false, reason: `port ${path} open failed: ${err.message}` });
        this.#scheduleRetry();
        return;
      }
      if (this.#stopped) {
        void this.#close(port);
        return;
      }
      this.#opens++;
      this.#backoff.reset();
      this.log.info({ path, opens: this.#opens }, 'serial port open');
      this.#setState({ open: true });
      this.#watchPath(port);
      if (this.options.onOpenWrite) void writeQuietly(port, this.options.onOpenWrite);
    });
  }

  #onClosed(port: SerialPort, err?: Error & { disconnected?: boolean }): void {
    if (this.#port !== port) return;
    this.#port = undefined;
    this.#clearPathWatch();
    if (this.#stopped) return;
    const why = err?.disconnected ? 'disconnected' : 'closed';
    this.log.warn({ path: this.options.path, err: err?.message }, `serial port ${why}`);
    this.#setState({ open: false, reason: `port ${this.options.path} ${why}` });
    this.#scheduleRetry();
  }

  #watchPath(port: SerialPort): void {
    this.#clearPathWatch();
    // A vanished path means the device is gone even if no read error was raised yet.
    this.#pathTimer = setInterval(() => {
      if (existsSync(this.options.path)) return;
      this.log.warn({ path: this.options.path }, 'serial port path vanished');
      void this.#close(port);
    }, this.options.pathCheckMs);
    this.#pathTimer.unref();
  }

  #clearPathWatch(): void {
    if (this.#pathTimer) clearInterval(this.#pathTimer);
    this.#pathTimer = undefined;
  }

  async #close(port: SerialPort | undefined): Promise<void> {
    this.#clearPathWatch();
    if (!port?.isOpen) return;
    // close() can hang on some Node/libuv versions (io_uring); never wait forever.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      port.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, this.#backoff.next());
  }

  #setState(next: PortState): void {
    if (samePortState(this.#state, next)) return;
    this.#state = next;
    this.emit('state', next);
  }
}

function samePortState(a: PortState, b: PortState): boolean {
  if (a.open || b.open) return a.open === b.open;
  return a.reason === b.reason;
}

async function writeQuietly(port: SerialPort, bytes: Buffer): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    port.write(bytes, (err) => resolve(!err));
  });
}
