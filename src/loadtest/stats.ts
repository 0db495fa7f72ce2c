// What a subscriber measures on one received stream, the way a browser's
// receiver does: sequence gaps (RFC 3550 A.3 "expected - received"), the
// interarrival jitter (RFC 3550 A.8), the sequence numbers still missing (for
// NACKs), duplicates and repairs. Pure: client.ts feeds it packets and clock.

/** Sequence numbers kept as "missing" for NACK; older ones count as lost without being asked for again (Chrome keeps ~1000). */
const MAX_MISSING = 1000;
/** NACKs per missing packet before giving up on it (and, for video, asking for a keyframe instead). */
export const MAX_NACKS_PER_PACKET = 3;
/** Time between two NACKs for the same packet. */
export const NACK_RETRY_MS = 100;
/** At most one keyframe request per stream in this time: a receiver that keeps losing must not turn the sender into a keyframe stream. */
export const PLI_MIN_INTERVAL_MS = 1000;

export interface StreamTotals {
  kind: 'audio' | 'video';
  packets: number;
  bytes: number;
  /** expected - received unique, at the end: what the viewer lost after NACK repairs. */
  lost: number;
  expected: number;
  /** gaps seen at arrival, before any repair */
  gapsAtArrival: number;
  recovered: number;
  duplicates: number;
  /** RFC 3550 interarrival jitter, ms */
  jitterMs: number;
  nacksSent: number;
  nackedPackets: number;
  plisSent: number;
  firstPacketAt?: number;
}

export class ReceiveStream {
  readonly kind: 'audio' | 'video';
  readonly clockRate: number;
  packets = 0;
  bytes = 0;
  duplicates = 0;
  recovered = 0;
  gapsAtArrival = 0;
  nacksSent = 0;
  nackedPackets = 0;
  plisSent = 0;
  firstPacketAt?: number;
  #baseSeq = -1;
  /** Highest sequence number seen, extended past 16 bits (RFC 3550 A.1). */
  #maxExtSeq = -1;
  #jitter = 0;
  #lastTransit?: number;
  /** missing extended seq -> { nacks sent, last NACK time } */
  readonly #missing = new Map<number, { nacks: number; lastAt: number }>();
  #givenUp = 0;
  #lastPliAt = -Infinity;

  constructor(kind: 'audio' | 'video', clockRate: number) {
    this.kind = kind;
    this.clockRate = clockRate;
  }

  /** One arriving RTP packet; `nowMs` is the arrival time (performance.now()). */
  receive(sequenceNumber: number, timestamp: number, size: number, nowMs: number): void {
    this.packets++;
    this.bytes += size;
    if (this.#maxExtSeq < 0) {
      this.firstPacketAt = nowMs;
      this.#baseSeq = this.#maxExtSeq = sequenceNumber;
      this.#updateJitter(timestamp, nowMs);
      return;
    }
    // Extend to the cycle nearest the highest seen.
    const maxLow = this.#maxExtSeq & 0xffff;
    let delta = (sequenceNumber - maxLow) & 0xffff;
    if (delta >= 0x8000) delta -= 0x10000;
    const ext = this.#maxExtSeq + delta;
    if (delta > 0) {
      for (let missing = this.#maxExtSeq + 1; missing < ext; missing++) {
        this.gapsAtArrival++;
        this.#missing.set(missing, { nacks: 0, lastAt: 0 });
      }
      while (this.#missing.size > MAX_MISSING) {
        const oldest = this.#missing.keys().next().value as number;
        this.#missing.delete(oldest);
        this.#givenUp++;
      }
      this.#maxExtSeq = ext;
      this.#updateJitter(timestamp, nowMs);
    } else if (this.#missing.delete(ext)) {
      this.recovered++;
    } else {
      this.duplicates++;
      this.packets--;
      this.bytes -= size;
    }
  }

  #updateJitter(timestamp: number, nowMs: number): void {
    const transit = (nowMs * this.clockRate) / 1000 - timestamp;
    if (this.#lastTransit !== undefined) {
      let d = Math.abs(transit - this.#lastTransit);
      // A timestamp jump across the 32-bit wrap or the sender's loop is not jitter.
      if (d > this.clockRate) d = 0;
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#lastTransit = transit;
  }

  /**
   * Sequence numbers (16-bit) to NACK now, and whether to send a PLI because
   * a video packet stayed missing after every NACK (a browser asks for a keyframe
   * when a frame cannot be decoded).
   */
  due(nowMs: number): { nack: number[]; pli: boolean } {
    const nack: number[] = [];
    let pli = false;
    for (const [seq, state] of this.#missing) {
      if (nowMs - state.lastAt < NACK_RETRY_MS) continue;
      if (state.nacks >= MAX_NACKS_PER_PACKET) {
        this.#missing.delete(seq);
        this.#givenUp++;
        if (this.kind === 'video') pli = true;
        continue;
      }
      state.nacks++;
      state.lastAt = nowMs;
      nack.push(seq & 0xffff);
    }
    if (pli && nowMs - this.#lastPliAt < PLI_MIN_INTERVAL_MS) pli = false;
    if (pli) this.#lastPliAt = nowMs;
    return { nack, pli };
  }

  totals(): StreamTotals {
    const expected = this.#maxExtSeq < 0 ? 0 : this.#maxExtSeq - this.#baseSeq + 1;
    return {
      kind: this.kind,
      packets: this.packets,
      bytes: this.bytes,
      expected,
      lost: Math.max(0, expected - this.packets),
      gapsAtArrival: this.gapsAtArrival,
      recovered: this.recovered,
      duplicates: this.duplicates,
      jitterMs: (this.#jitter / this.clockRate) * 1000,
      nacksSent: this.nacksSent,
      nackedPackets: this.nackedPackets,
      plisSent: this.plisSent,
      firstPacketAt: this.firstPacketAt,
    };
  }
}
