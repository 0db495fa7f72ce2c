import type { DeviceReadingBody, ReadingSink } from '../../driver.js';
import { SampleClock } from '../sampleClock.js';
import { SerialDeviceDriver } from '../serialDriver.js';
import { WaveformChunker } from '../waveformChunker.js';
import { CMS50_CODES, CMS50_UNITS } from './codes.js';
import type { Cms50DeviceConfig } from './config.js';
import { CMS50_PACKET_LENGTH, Cms50Framer, type Cms50Packet } from './framer.js';

/** At most this many packets are inferred lost from one run of discarded bytes. */
const MAX_INFERRED_MISSING = 60;
const SPO2_INVALID = 127;
const PULSE_RATE_INVALID = 255;

/**
 * Contec CMS50D+ live stream: 5-byte packets at 60 Hz. Pleth becomes waveform
 * readings; SpO2 and pulse rate numerics at a fixed interval; finger-out and
 * probe-error become status readings when they change (and at session start).
 * Discarded bytes between good packets (about 5 per lost packet) become null
 * pleth samples so later samples keep their time.
 */
export class Cms50Driver extends SerialDeviceDriver {
  readonly #framer: Cms50Framer;
  readonly #clock: SampleClock;
  readonly #chunker: WaveformChunker;
  readonly #numericIntervalMs: number;
  #lastNumerics: { t: number; rt: number } | undefined;
  #fingerOut: boolean | undefined;
  #probeError: boolean | undefined;

  constructor(deviceId: string, config: Cms50DeviceConfig, sink: ReadingSink) {
    super(deviceId, sink, config, { baudRate: config.baudRate, dataBits: 8, parity: 'odd', stopBits: 1 }, 'device.cms50');
    this.#numericIntervalMs = config.numericIntervalMs;
    this.#framer = new Cms50Framer(this.counters);
    this.#clock = new SampleClock({ sampleRate: config.sampleRate });
    this.#chunker = new WaveformChunker(
      deviceId,
      [{ code: CMS50_CODES.pleth, unit: CMS50_UNITS.pleth }],
      config.sampleRate,
      config.chunkSamples,
      this.#clock,
    );
    this.declareChannel(deviceId, { code: CMS50_CODES.spo2, unit: CMS50_UNITS.spo2, kind: 'numeric' });
    this.declareChannel(deviceId, { code: CMS50_CODES.pulseRate, unit: CMS50_UNITS.pulseRate, kind: 'numeric' });
    this.declareChannel(deviceId, { code: CMS50_CODES.pleth, unit: CMS50_UNITS.pleth, kind: 'waveform' });
  }

  protected decode(chunk: Buffer, receivedAt: number, out: DeviceReadingBody[]): void {
    const packets = this.#framer.push(chunk);
    if (packets.length === 0) return;
    const missing = packets.map((p) => Math.min(Math.round(p.discardedBefore / CMS50_PACKET_LENGTH), MAX_INFERRED_MISSING));
    this.#chunker.observeBatch(missing, packets.length, receivedAt, out);
    const value: (number | null)[] = [null];
    for (let p = 0; p < packets.length; p++) {
      const packet = packets[p]!;
      if (missing[p]! > 0) this.#chunker.pushMissing(missing[p]!, receivedAt, out);
      const t = this.#clock.timeOf(this.#chunker.nextIndex);
      const unusable = packet.fingerOut || packet.probeError;
      this.#emitStatusChanges(packet, t, receivedAt, out);
      value[0] = unusable ? null : packet.pleth;
      this.#chunker.push(value, receivedAt, out);
      // One SpO2/PR pair per interval of sample time (a backlog read at once still
      // yields one per second) or of receipt time (a device sending slower than 60 Hz).
      if (this.#numericsDue(t, receivedAt)) {
        this.#lastNumerics = { t, rt: receivedAt };
        this.#emitNumerics(packet, unusable, t, receivedAt, out);
      }
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
    this.#lastNumerics = undefined;
    this.#fingerOut = undefined;
    this.#probeError = undefined;
  }

  #numericsDue(t: number, receivedAt: number): boolean {
    const last = this.#lastNumerics;
    if (!last) return true;
    return t - last.t >= this.#numericIntervalMs || receivedAt - last.rt >= this.#numericIntervalMs;
  }

  #emitNumerics(packet: Cms50Packet, unusable: boolean, t: number, rt: number, out: DeviceReadingBody[]): void {
    const spo2 = unusable || packet.spo2 === 0 || packet.spo2 > 100 || packet.spo2 === SPO2_INVALID ? null : packet.spo2;
    const pulseRate = unusable || packet.pulseRate === 0 || packet.pulseRate === PULSE_RATE_INVALID ? null : packet.pulseRate;
    out.push(
      { deviceId: this.deviceId, kind: 'numeric', code: CMS50_CODES.spo2, unit: CMS50_UNITS.spo2, t, rt, value: spo2 },
      { deviceId: this.deviceId, kind: 'numeric', code: CMS50_CODES.pulseRate, unit: CMS50_UNITS.pulseRate, t, rt, value: pulseRate },
    );
  }

  #emitStatusChanges(packet: Cms50Packet, t: number, rt: number, out: DeviceReadingBody[]): void {
    if (packet.fingerOut !== this.#fingerOut) {
      this.#fingerOut = packet.fingerOut;
      out.push({
        deviceId: this.deviceId, kind: 'status', code: CMS50_CODES.fingerOut, unit: CMS50_UNITS.status, t, rt,
        active: packet.fingerOut, text: packet.fingerOut ? 'finger out of probe' : 'finger in probe',
      });
    }
    if (packet.probeError !== this.#probeError) {
      this.#probeError = packet.probeError;
      out.push({
        deviceId: this.deviceId, kind: 'status', code: CMS50_CODES.probeError, unit: CMS50_UNITS.status, t, rt,
        active: packet.probeError, text: packet.probeError ? 'probe error' : 'probe ok',
      });
    }
  }
}
