import { DeviceDriver, type DeviceReadingBody, type ReadingSink } from '../driver.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { SerialLinkConfig } from './commonConfig.js';
import { DeliveryQueue, type DeliveryCounters } from '../deliveryQueue.js';
import { LinkHealth } from './linkHealth.js';
import { ReconnectingPort, type PortState, type ReconnectingPortOptions } from './port.js';

export type SerialFraming = Pick<ReconnectingPortOptions, 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'onOpenWrite' | 'onStopWrite'>;

const HEALTH_CHECK_MS = 250;
const STOP_DRAIN_TIMEOUT_MS = 2000;
const MAX_DELIVERY_BATCH = 1000;

/**
 * One serial device: a reconnecting port feeding a protocol decoder, whose
 * readings go to the sink through an ordered retry queue. Subclasses supply
 * decode() (bytes -> readings) and endSession() (flush what is pending when
 * the byte stream is broken: reconnect or stop).
 */
export abstract class SerialDeviceDriver extends DeviceDriver {
  readonly deviceIds: readonly string[];
  protected readonly log: Logger;
  readonly #port: ReconnectingPort;
  readonly #queue: DeliveryQueue;
  readonly #health: LinkHealth;
  readonly #flushAfterMs: number;
  #healthTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  /** Wall time of the last ingest (receivedAt may be a caller's clock) and its receivedAt. */
  #lastIngestAt = 0;
  #lastReceivedAt = 0;

  constructor(
    protected readonly deviceId: string,
    sink: ReadingSink,
    link: SerialLinkConfig,
    framing: SerialFraming,
    component: string,
  ) {
    super(sink);
    this.deviceIds = [deviceId];
    this.log = createLogger(component, { deviceId });
    this.#port = new ReconnectingPort(
      { ...framing, path: link.path, reconnectMinMs: link.reconnect.minMs, reconnectMaxMs: link.reconnect.maxMs, pathCheckMs: link.pathCheckMs },
      this.log,
    );
    this.#queue = new DeliveryQueue((batch) => this.deliver(batch), {
      maxBuffered: link.maxBufferedReadings,
      maxBatch: Math.min(MAX_DELIVERY_BATCH, link.maxBufferedReadings),
      retryMinMs: 100,
      retryMaxMs: 5000,
    }, this.log);
    this.#health = new LinkHealth({
      staleAfterMs: link.staleAfterMs,
      maxFrameErrorRate: link.maxFrameErrorRate,
      errorWindowMs: link.errorWindowMs,
      minFramesForRate: 20,
    });
    this.#flushAfterMs = link.flushAfterMs;
    this.#port.on('data', (chunk, receivedAt) => this.ingest(chunk, receivedAt));
    this.#port.on('state', (state) => this.#onPortState(state));
  }

  /** Retry-buffer counters: buffered, retries, overflowDropped. */
  get delivery(): Readonly<DeliveryCounters> {
    return this.#queue.counters;
  }

  async start(): Promise<void> {
    this.#port.start();
    this.#healthTimer ??= setInterval(() => this.#updateStatus(), HEALTH_CHECK_MS);
    this.#healthTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#endSession(Date.now());
    await this.#port.stop();
    const drained = await this.#queue.drain(STOP_DRAIN_TIMEOUT_MS);
    this.#queue.close();
    if (!drained) this.log.error({ undelivered: this.#queue.size }, 'stopped with readings the sink never accepted');
  }

  /**
   * Feeds bytes received at `receivedAt` through framing, parsing and delivery.
   * The port calls it; benches and tests may call it directly.
   */
  ingest(chunk: Buffer, receivedAt: number = Date.now()): void {
    const decodedBefore = this.counters.framesDecoded;
    const out: DeviceReadingBody[] = [];
    try {
      this.decode(chunk, receivedAt, out);
    } catch (err) {
      // A decoder bug must not take the agent down; count it and resynchronise.
      this.counters.bytesDiscarded += chunk.length;
      this.log.error({ err: (err as Error).message }, 'decoder failed; session restarted');
      this.#endSession(receivedAt);
    }
    this.#queue.enqueue(out);
    this.#lastIngestAt = Date.now();
    this.#lastReceivedAt = receivedAt;
    if (this.pendingSamples > 0) this.#flushTimer ??= setTimeout(() => this.#flushIfIdle(), this.#flushAfterMs);
    if (this.counters.framesDecoded !== decodedBefore) {
      this.#health.frameDecoded(receivedAt);
      if (this.statusOf(this.deviceId).status !== 'online') this.#updateStatus();
    }
  }

  /** Resolves when every reading produced so far was accepted (false on timeout). */
  drained(timeoutMs?: number): Promise<boolean> {
    return this.#queue.drain(timeoutMs);
  }

  protected abstract decode(chunk: Buffer, receivedAt: number, out: DeviceReadingBody[]): void;

  /** The byte stream broke (reconnect, stop): emit pending samples and drop partial frames. */
  protected abstract endSession(receivedAt: number, out: DeviceReadingBody[]): void;

  /** Waveform samples decoded and held for a chunk not yet full. */
  protected abstract get pendingSamples(): number;

  /**
   * The stream paused: emit the partial chunk (stamped on the sample clock, so
   * the next chunk's t continues from it) but keep the session and any partial
   * frame, since the bytes may resume where they stopped.
   */
  protected abstract flushPending(receivedAt: number, out: DeviceReadingBody[]): void;

  /**
   * One timer per partial chunk, not one per read: it fires flushAfterMs after
   * the partial chunk began waiting and re-arms for the rest of the interval if
   * bytes came meanwhile, so a steady stream never flushes early (its chunks
   * stay whole) and a paused one flushes within flushAfterMs of its last byte.
   */
  #flushIfIdle(): void {
    this.#flushTimer = undefined;
    if (this.pendingSamples === 0) return;
    const idle = Date.now() - this.#lastIngestAt;
    if (idle < this.#flushAfterMs) {
      this.#flushTimer = setTimeout(() => this.#flushIfIdle(), this.#flushAfterMs - idle);
      return;
    }
    const out: DeviceReadingBody[] = [];
    try {
      this.flushPending(this.#lastReceivedAt, out);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'flushing a partial chunk failed');
    }
    this.#queue.enqueue(out);
  }

  #endSession(now: number): void {
    const out: DeviceReadingBody[] = [];
    try {
      this.endSession(now, out);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'ending session failed');
    }
    this.#queue.enqueue(out);
  }

  #onPortState(state: PortState): void {
    if (state.open) {
      if (this.#port.opens > 1) this.counters.reconnects++;
      this.#endSession(Date.now());
      this.#health.portOpened(Date.now());
    } else {
      this.#endSession(Date.now());
      this.#health.portClosed(state.reason);
    }
    this.#updateStatus();
  }

  #updateStatus(): void {
    this.setStatus(this.deviceId, this.#health.evaluate(Date.now(), this.counters.framesDecoded, this.counters.framesRejected));
  }
}
