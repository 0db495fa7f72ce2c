import type { DeviceReadingBody, ReadingSink } from '../../driver.js';
import { sum } from '../math.js';
import { SampleClock } from '../sampleClock.js';
import { SerialDeviceDriver } from '../serialDriver.js';
import { WaveformChunker } from '../waveformChunker.js';
import { cytonMillivoltsPerCount, type CytonDeviceConfig } from './config.js';
import { CytonFramer, type CytonPacket } from './framer.js';

const START_STREAMING = Buffer.from('b');
const STOP_STREAMING = Buffer.from('s');
const SAMPLE_NUMBER_MODULO = 256;
/** Slack for receipt-time jitter when checking a counter gap against elapsed time. */
const GAP_TOLERANCE_SAMPLES = 3;

interface EnabledChannel {
  index: number;
  code: string;
  millivoltsPerCount: number;
}

/**
 * OpenBCI Cyton (ADS1299) as an ECG front end: 33-byte packets at 250 Hz,
 * channels scaled to mV and cut into waveform readings. Packets missing from
 * the sample counter become null samples so later samples keep their time.
 */
export class CytonDriver extends SerialDeviceDriver {
  /** Packets the sample counter says were lost, and counter jumps judged corrupt. */
  readonly gapCounters = { gaps: 0, missingSamples: 0, implausibleJumps: 0 };
  readonly #framer: CytonFramer;
  readonly #clock: SampleClock;
  readonly #chunker: WaveformChunker;
  readonly #channels: EnabledChannel[];
  #lastSampleNumber: number | undefined;

  constructor(deviceId: string, config: CytonDeviceConfig, sink: ReadingSink) {
    super(deviceId, sink, config, {
      baudRate: config.baudRate,
      dataBits: 8,
      parity: 'none',
      stopBits: 1,
      onOpenWrite: config.sendStartStop ? START_STREAMING : undefined,
      onStopWrite: config.sendStartStop ? STOP_STREAMING : undefined,
    }, 'device.cyton');
    this.#channels = enabledChannels(config);
    this.#framer = new CytonFramer(this.counters);
    this.#clock = new SampleClock({ sampleRate: config.sampleRate });
    this.#chunker = new WaveformChunker(
      deviceId,
      this.#channels.map((c) => ({ code: c.code, unit: 'mV' })),
      config.sampleRate,
      config.chunkSamples,
      this.#clock,
    );
    for (const c of this.#channels) this.declareChannel(deviceId, { code: c.code, unit: 'mV', kind: 'waveform' });
  }

  protected decode(chunk: Buffer, receivedAt: number, out: DeviceReadingBody[]): void {
    const packets = this.#framer.push(chunk);
    if (packets.length === 0) return;
    const missing = this.#plausibleGaps(packets.map((p) => this.#missingBefore(p)), packets.length, receivedAt);
    // Far later than the counter can explain (it wraps every 256 samples): a new session.
    this.#chunker.observeBatch(missing, packets.length, receivedAt, out);
    const values: (number | null)[] = new Array(this.#channels.length);
    for (let p = 0; p < packets.length; p++) {
      const packet = packets[p]!;
      const gap = missing[p]!;
      if (gap > 0) {
        this.gapCounters.gaps++;
        this.gapCounters.missingSamples += gap;
        this.#chunker.pushMissing(gap, receivedAt, out);
      }
      for (let c = 0; c < this.#channels.length; c++) {
        const channel = this.#channels[c]!;
        values[c] = packet.counts[channel.index]! * channel.millivoltsPerCount;
      }
      this.#chunker.push(values, receivedAt, out);
      this.#lastSampleNumber = packet.sampleNumber;
    }
  }

  protected get pendingSamples(): number {
    return this.#chunker.pending;
  }

  protected flushPending(receivedAt: number, out: DeviceReadingBody[]): void {
    if (this.#clock.anchored) this.#chunker.flush(receivedAt, out);
  }

  protected endSession(receivedAt: number, out: DeviceReadingBody[]): void {
    if (this.#clock.anchored) this.#chunker.flush(receivedAt, out);
    this.#chunker.reset();
    this.#clock.reset();
    this.#framer.reset();
    this.#lastSampleNumber = undefined;
  }

  /**
   * A counter jump needing samples that could not have been taken yet is a
   * corrupted sample number, not loss: such gaps are ignored (and counted).
   */
  #plausibleGaps(missing: number[], packets: number, receivedAt: number): number[] {
    if (!this.#clock.anchored || sum(missing) === 0) return missing;
    const elapsedSamples = Math.floor((receivedAt - this.#clock.timeOf(this.#chunker.nextIndex)) / this.#clock.periodMs) + 1;
    let budget = elapsedSamples + GAP_TOLERANCE_SAMPLES - packets;
    return missing.map((gap) => {
      if (gap <= budget) {
        budget -= gap;
        return gap;
      }
      if (gap > 0) this.gapCounters.implausibleJumps++;
      return 0;
    });
  }

  /** Packets lost between the previous packet and this one, from the rolling counter. */
  #missingBefore(packet: CytonPacket): number {
    const last = this.#lastSampleNumber;
    this.#lastSampleNumber = packet.sampleNumber;
    if (last === undefined) return 0;
    return (packet.sampleNumber - last - 1 + SAMPLE_NUMBER_MODULO) % SAMPLE_NUMBER_MODULO;
  }
}

function enabledChannels(config: CytonDeviceConfig): EnabledChannel[] {
  const channels: EnabledChannel[] = [];
  config.channels.forEach((code, index) => {
    if (code === null) return;
    const gain = Array.isArray(config.gain) ? config.gain[index]! : config.gain;
    channels.push({ index, code, millivoltsPerCount: cytonMillivoltsPerCount(gain) });
  });
  return channels;
}
