import type { Random } from '../sim/random.js';

/**
 * One direction of an emulated link: a FIFO queue in front of a serializer of
 * `rateBps`, then a propagation delay with jitter, then random loss. Pure
 * decisions on times passed in (no timers, no sockets): the relay
 * (LinkEmulator) does the I/O and the unit tests check the arithmetic.
 */
export interface DirectionSpec {
  /** Line rate in bits/s, counted on the wire (payload plus IP/UDP or IP/TCP headers). */
  rateBps: number;
  /** One-way propagation delay (ms). */
  delayMs: number;
  /** Each packet's delay varies uniformly in ±jitterMs; packets never overtake each other. */
  jitterMs: number;
  /** Probability that a packet is lost on the medium (after it used the line). */
  loss: number;
  /** Queue in front of the serializer, wire bytes; a datagram that does not fit is tail-dropped. */
  queueBytes: number;
}

/** IPv4 (20) + UDP (8): what every datagram costs on the wire besides its payload. */
export const UDP_OVERHEAD_BYTES = 28;
/** IPv4 (20) + TCP (20) per segment of up to one MSS. */
export const TCP_OVERHEAD_BYTES = 40;
export const TCP_MSS = 1460;

export type DropReason = 'loss' | 'queue' | 'outage';

export type Verdict =
  | { deliver: true; deliverAtMs: number; wireBytes: number }
  | { deliver: false; reason: DropReason; wireBytes: number };

export interface DirectionCounters {
  offeredPackets: number;
  deliveredPackets: number;
  /** Wire bytes (with headers) handed to the far side. */
  deliveredWireBytes: number;
  droppedLoss: number;
  droppedQueue: number;
  droppedOutage: number;
  /** Largest queue seen, wire bytes. */
  peakQueueBytes: number;
}

export function wireBytesOf(payloadBytes: number, reliable: boolean): number {
  if (!reliable) return payloadBytes + UDP_OVERHEAD_BYTES;
  return payloadBytes + Math.max(1, Math.ceil(payloadBytes / TCP_MSS)) * TCP_OVERHEAD_BYTES;
}

export class LinkDirection {
  readonly spec: DirectionSpec;
  readonly counters: DirectionCounters = {
    offeredPackets: 0,
    deliveredPackets: 0,
    deliveredWireBytes: 0,
    droppedLoss: 0,
    droppedQueue: 0,
    droppedOutage: 0,
    peakQueueBytes: 0,
  };
  readonly #random: Random;
  /** When the serializer finishes the last accepted packet. */
  #busyUntilMs = 0;
  /** When the last accepted packet reaches the far side: later packets never arrive before it. */
  #lastDeliveryMs = 0;
  /** Departure time and wire size of packets still queued, oldest first. */
  readonly #queued: { departMs: number; wireBytes: number }[] = [];
  #queuedBytes = 0;

  constructor(spec: DirectionSpec, random: Random) {
    if (!(spec.rateBps > 0)) throw new Error(`link rate must be > 0 bits/s (got ${spec.rateBps})`);
    if (spec.loss < 0 || spec.loss >= 1) throw new Error(`link loss must be in [0, 1) (got ${spec.loss})`);
    if (spec.delayMs < 0 || spec.jitterMs < 0) throw new Error('link delay and jitter must be >= 0');
    if (!(spec.queueBytes >= 1500)) throw new Error(`link queue must hold at least one 1500-byte packet (got ${spec.queueBytes})`);
    this.spec = spec;
    this.#random = random;
  }

  /** Wire bytes waiting for the serializer at `nowMs`. */
  queuedBytes(nowMs: number): number {
    while (this.#queued.length > 0 && this.#queued[0]!.departMs <= nowMs) this.#queuedBytes -= this.#queued.shift()!.wireBytes;
    return this.#queuedBytes;
  }

  /** When the queue will hold at most `bytes` again (for a paused TCP reader). */
  drainedBelowAt(bytes: number, nowMs: number): number {
    let left = this.queuedBytes(nowMs);
    if (left <= bytes) return nowMs;
    for (const entry of this.#queued) {
      left -= entry.wireBytes;
      if (left <= bytes) return entry.departMs;
    }
    return nowMs;
  }

  /**
   * A packet of `payloadBytes` offered at `nowMs`. Datagrams (reliable=false)
   * are tail-dropped when the queue is full and lost with probability `loss`
   * after crossing the line. A TCP chunk (reliable=true) is never dropped: its
   * sender is paused while the queue is over its limit (see LinkEmulator), and
   * a loss costs what TCP pays for it, the line time again plus a
   * retransmission timeout.
   */
  offer(payloadBytes: number, nowMs: number, reliable = false): Verdict {
    this.counters.offeredPackets++;
    const wireBytes = wireBytesOf(payloadBytes, reliable);
    const queued = this.queuedBytes(nowMs);
    if (!reliable && queued + wireBytes > this.spec.queueBytes) {
      this.counters.droppedQueue++;
      return { deliver: false, reason: 'queue', wireBytes };
    }
    const lineMs = (wireBytes * 8000) / this.spec.rateBps;
    let departMs = Math.max(nowMs, this.#busyUntilMs) + lineMs;
    const lost = this.#random() < this.spec.loss;
    let extraMs = 0;
    if (lost && reliable) {
      // Resent after one RTO (at least 200 ms, as Linux), crossing the line again.
      departMs += lineMs;
      extraMs = Math.max(200, 4 * this.spec.delayMs);
    }
    this.#busyUntilMs = departMs;
    this.#queued.push({ departMs, wireBytes });
    this.#queuedBytes += wireBytes;
    this.counters.peakQueueBytes = Math.max(this.counters.peakQueueBytes, this.#queuedBytes);
    if (lost && !reliable) {
      this.counters.droppedLoss++;
      return { deliver: false, reason: 'loss', wireBytes };
    }
    const jitter = this.spec.jitterMs > 0 ? (this.#random() * 2 - 1) * this.spec.jitterMs : 0;
    const deliverAtMs = Math.max(this.#lastDeliveryMs, departMs + Math.max(0, this.spec.delayMs + jitter) + extraMs);
    this.#lastDeliveryMs = deliverAtMs;
    return { deliver: true, deliverAtMs, wireBytes };
  }

  /** Counts a packet the relay finally handed over (or lost to an outage while in flight). */
  delivered(wireBytes: number): void {
    this.counters.deliveredPackets++;
    this.counters.deliveredWireBytes += wireBytes;
  }

  droppedByOutage(): void {
    this.counters.droppedOutage++;
  }

  /** An outage: the line and its queue are lost; the next packet starts on an idle line. */
  reset(nowMs: number): void {
    this.#queued.length = 0;
    this.#queuedBytes = 0;
    this.#busyUntilMs = nowMs;
    this.#lastDeliveryMs = nowMs;
  }
}
