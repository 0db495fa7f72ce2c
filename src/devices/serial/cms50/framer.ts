import type { DriverCounters } from '../../driver.js';

/** One decoded 5-byte CMS50D+ live packet. */
export interface Cms50Packet {
  /** Signal strength 0..15. */
  signal: number;
  fingerOut: boolean;
  spo2Dropping: boolean;
  beep: boolean;
  /** Pleth amplitude 0..127. */
  pleth: number;
  /** Bar graph 0..15. */
  bar: number;
  probeError: boolean;
  searching: boolean;
  /** Pulse rate as sent, 0..255 (bit 7 carried in byte 2). */
  pulseRate: number;
  /** SpO2 as sent, 0..127. */
  spo2: number;
  /** Bytes discarded since the previous good packet (lost or mangled packets). */
  discardedBefore: number;
}

export const CMS50_PACKET_LENGTH = 5;
const SYNC_BIT = 0x80;

type FrameCounters = Pick<DriverCounters, 'framesDecoded' | 'framesRejected' | 'bytesDiscarded'>;

/**
 * Streaming framer: a packet starts at the only byte with bit 7 set and has
 * four more bytes with bit 7 clear. A sync byte arriving early rejects the
 * partial packet; bytes outside a packet are discarded.
 */
export class Cms50Framer {
  readonly #frame = Buffer.alloc(CMS50_PACKET_LENGTH);
  #length = 0;
  #discardedSinceGood = 0;

  constructor(private readonly counters: FrameCounters) {}

  reset(): void {
    this.#length = 0;
    this.#discardedSinceGood = 0;
  }

  push(chunk: Buffer): Cms50Packet[] {
    const packets: Cms50Packet[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte & SYNC_BIT) {
        if (this.#length > 0) this.#rejectPartial();
        this.#frame[0] = byte;
        this.#length = 1;
        continue;
      }
      if (this.#length === 0) {
        this.counters.bytesDiscarded++;
        this.#discardedSinceGood++;
        continue;
      }
      this.#frame[this.#length++] = byte;
      if (this.#length === CMS50_PACKET_LENGTH) {
        packets.push(decodeCms50Packet(this.#frame, this.#discardedSinceGood));
        this.counters.framesDecoded++;
        this.#length = 0;
        this.#discardedSinceGood = 0;
      }
    }
    return packets;
  }

  #rejectPartial(): void {
    this.counters.framesRejected++;
    this.counters.bytesDiscarded += this.#length;
    this.#discardedSinceGood += this.#length;
    this.#length = 0;
  }
}

export function decodeCms50Packet(frame: Buffer, discardedBefore = 0): Cms50Packet {
  const b0 = frame[0]!;
  const b2 = frame[2]!;
  return {
    signal: b0 & 0x0f,
    fingerOut: (b0 & 0x10) !== 0,
    spo2Dropping: (b0 & 0x20) !== 0,
    beep: (b0 & 0x40) !== 0,
    pleth: frame[1]! & 0x7f,
    bar: b2 & 0x0f,
    probeError: (b2 & 0x10) !== 0,
    searching: (b2 & 0x20) !== 0,
    pulseRate: ((b2 & 0x40) << 1) | (frame[3]! & 0x7f),
    spo2: frame[4]! & 0x7f,
    discardedBefore,
  };
}
