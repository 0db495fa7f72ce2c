import type { DeviceReadingBody } from '../driver.js';
import { sum } from './math.js';
import type { SampleClock } from './sampleClock.js';

export interface ChunkChannel {
  code: string;
  unit: string;
}

/**
 * Collects samples of several channels taken together and cuts them into
 * waveform readings of `chunkSamples` samples, one reading per channel, stamped
 * with the clock time of the chunk's first sample.
 */
export class WaveformChunker {
  readonly #buffers: (number | null)[][];
  #chunkStart = 0;
  /** Session index of the next sample pushed. */
  #nextIndex = 0;

  constructor(
    private readonly deviceId: string,
    private readonly channels: readonly ChunkChannel[],
    private readonly sampleRate: number,
    private readonly chunkSamples: number,
    private readonly clock: SampleClock,
  ) {
    this.#buffers = channels.map(() => []);
  }

  get nextIndex(): number {
    return this.#nextIndex;
  }

  /** Samples pushed and not yet emitted (a partial chunk). */
  get pending(): number {
    return this.#nextIndex - this.#chunkStart;
  }

  /** One value per channel, in channel order. Returns readings when a chunk fills. */
  push(values: readonly (number | null)[], rt: number, out: DeviceReadingBody[]): void {
    for (let c = 0; c < this.#buffers.length; c++) this.#buffers[c]!.push(values[c] ?? null);
    this.#nextIndex++;
    if (this.#nextIndex - this.#chunkStart >= this.chunkSamples) this.flush(rt, out);
  }

  /** Marks `count` samples of every channel as missing, so later samples keep their time. */
  pushMissing(count: number, rt: number, out: DeviceReadingBody[]): void {
    for (let i = 0; i < count; i++) {
      for (const buffer of this.#buffers) buffer.push(null);
      this.#nextIndex++;
      if (this.#nextIndex - this.#chunkStart >= this.chunkSamples) this.flush(rt, out);
    }
  }

  /** Emits whatever is pending (a partial chunk), e.g. before a session ends. */
  flush(rt: number, out: DeviceReadingBody[]): void {
    if (this.#nextIndex === this.#chunkStart) return;
    const t = this.clock.timeOf(this.#chunkStart);
    for (let c = 0; c < this.channels.length; c++) {
      const channel = this.channels[c]!;
      out.push({
        deviceId: this.deviceId,
        kind: 'waveform',
        code: channel.code,
        unit: channel.unit,
        t,
        rt,
        sampleRate: this.sampleRate,
        samples: this.#buffers[c]!,
      });
      this.#buffers[c] = [];
    }
    this.#chunkStart = this.#nextIndex;
  }

  /**
   * Times a batch of `packets` samples received at `rt`, after `missing[i]`
   * lost samples before packet i. If the stream stalled (far later than the
   * clock can explain), the session ends: pending samples are flushed and a
   * new session starts at index 0, where loss before the first packet no
   * longer counts (missing[0] is zeroed).
   */
  observeBatch(missing: number[], packets: number, rt: number, out: DeviceReadingBody[]): void {
    if (this.clock.observe(this.#nextIndex, sum(missing) + packets, rt) !== 'stalled') return;
    this.flush(rt, out);
    this.reset();
    this.clock.reset();
    missing[0] = 0;
    this.clock.observe(0, sum(missing) + packets, rt);
  }

  /** Starts a new session at index 0; call flush() first to keep pending samples. */
  reset(): void {
    for (let c = 0; c < this.#buffers.length; c++) this.#buffers[c] = [];
    this.#chunkStart = 0;
    this.#nextIndex = 0;
  }
}
