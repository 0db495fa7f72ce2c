import type { DriverCounters } from '../../driver.js';

/** One decoded 33-byte Cyton packet. */
export interface CytonPacket {
  /** Rolling sample counter, 0..255. */
  sampleNumber: number;
  /** Raw ADS1299 counts of channels 1..8 (signed 24-bit). */
  counts: Int32Array;
  /** Stop byte C0..C6, telling how the aux bytes are used. */
  footer: number;
  /** The 6 aux bytes (accelerometer or timestamps, depending on footer). */
  aux: Buffer;
}

export const CYTON_PACKET_LENGTH = 33;
const HEADER = 0xa0;
const FOOTER_OFFSET = 32;

type FrameCounters = Pick<DriverCounters, 'framesDecoded' | 'framesRejected' | 'bytesDiscarded'>;

function isFooter(byte: number): boolean {
  return byte >= 0xc0 && byte <= 0xc6;
}

/**
 * Streaming framer for the Cyton byte stream: a frame is A0, 31 bytes, and a
 * C0..C6 footer. After discarding bytes (resync), a candidate must also be
 * followed by the next header, or continue the sample counter, so a stray A0
 * in the data is not taken for a frame start.
 */
export class CytonFramer {
  #pending: Buffer = Buffer.alloc(0);
  #inSync = false;
  #lastSampleNumber: number | undefined;

  constructor(private readonly counters: FrameCounters) {}

  /** Drops buffered partial bytes (e.g. after a reconnect). */
  reset(): void {
    this.#pending = Buffer.alloc(0);
    this.#inSync = false;
    this.#lastSampleNumber = undefined;
  }

  push(chunk: Buffer): CytonPacket[] {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const packets: CytonPacket[] = [];
    let i = 0;
    while (data.length - i >= CYTON_PACKET_LENGTH) {
      if (data[i] === HEADER && isFooter(data[i + FOOTER_OFFSET]!) && this.#confirmed(data, i)) {
        const packet = decodeCytonPacket(data, i);
        packets.push(packet);
        this.counters.framesDecoded++;
        this.#lastSampleNumber = packet.sampleNumber;
        this.#inSync = true;
        i += CYTON_PACKET_LENGTH;
        continue;
      }
      if (data[i] === HEADER) this.counters.framesRejected++;
      i = this.#skipToHeader(data, i + 1, i);
    }
    // Bytes before the next possible header can never start a frame: count them now.
    i = this.#skipToHeader(data, i, i);
    this.#pending = i >= data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(i));
    return packets;
  }

  /** Discards from `from` up to the next header at or after `searchFrom`; returns its index. */
  #skipToHeader(data: Buffer, searchFrom: number, from: number): number {
    let next = data.indexOf(HEADER, searchFrom);
    if (next < 0) next = data.length;
    if (next > from) {
      this.counters.bytesDiscarded += next - from;
      this.#inSync = false;
    }
    return next;
  }

  #confirmed(data: Buffer, i: number): boolean {
    if (this.#inSync) return true;
    const next = i + CYTON_PACKET_LENGTH;
    if (next >= data.length || data[next] === HEADER) return true;
    return this.#lastSampleNumber !== undefined && data[i + 1] === ((this.#lastSampleNumber + 1) & 0xff);
  }
}

export function decodeCytonPacket(data: Buffer, offset: number): CytonPacket {
  const counts = new Int32Array(8);
  for (let c = 0; c < 8; c++) {
    const at = offset + 2 + c * 3;
    const raw = (data[at]! << 16) | (data[at + 1]! << 8) | data[at + 2]!;
    counts[c] = raw & 0x800000 ? raw - 0x1000000 : raw;
  }
  return {
    sampleNumber: data[offset + 1]!,
    counts,
    footer: data[offset + FOOTER_OFFSET]!,
    aux: Buffer.from(data.subarray(offset + 26, offset + 32)),
  };
}
