import { EventEmitter } from 'node:events';
import type { RunningSimulator, SentValues, SimulatorCommand, SimulatorEvents } from '../simulator.js';
import { createLogger } from '../../common/logger.js';
import { FaultInjector } from './faults.js';
import { commonSimUsage, numberOption, parseSimArgs, type CommonSimSettings } from './options.js';
import { PacedLoop } from './pacedLoop.js';
import { seededRandom, type Random } from '../random.js';
import { SimPort } from './simPort.js';
import { Ecg, type Lead } from '../physiology.js';

// The simulator builds its own bytes from the OpenBCI data-format description;
// it deliberately shares no framing or scaling code with the driver.
const SAMPLE_RATE = 250;
const BAUD_RATE = 115200;
const COUNTS_MAX = 8388607;
const COUNTS_MIN = -8388608;
/** Accelerometer Z = 1 g (8000 * 0.002 / 16 g per count), as a board lying flat reports. */
const AUX_ACCEL = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x1f, 0x40]);
/** The leads on channels 1-8, as the default montage wires them. */
const SIM_LEADS: readonly Lead[] = ['I', 'II', 'III', 'V1', 'V2', 'V3', 'V4', 'V5'];
const SIM_CHANNEL_CODES = SIM_LEADS.map((lead) => `MDC_ECG_ELEC_POTL_${lead}`);

export interface CytonSimSettings extends CommonSimSettings {
  gain: number;
  /** Stream without waiting for 'b' (a board already streaming). */
  autostart: boolean;
}

const usage = `hoichan simulate cyton --path <tty> [options]
Simulates an OpenBCI Cyton (ECG front end): 33-byte packets at 250 Hz, 115200 8N1.
Streams after receiving 'b' (or at once with --autostart), stops on 's'.
${commonSimUsage}
  --gain <n>                   ADS1299 gain used to turn mV into counts (default 24)
  --autostart                  stream without waiting for 'b'`;

class CytonSimulation extends EventEmitter<SimulatorEvents> implements RunningSimulator {
  readonly #port: SimPort;
  readonly #faults: FaultInjector;
  readonly #loop: PacedLoop;
  readonly #ecg: Ecg;
  readonly #millivoltsPerCount: number;
  #streaming: boolean;
  #sampleIndex = 0;
  #sampleNumber = 0;

  constructor(settings: CytonSimSettings, random: Random) {
    super();
    this.#streaming = settings.autostart;
    this.#millivoltsPerCount = 4500 / settings.gain / 8388607;
    // Electrode noise and a respiratory baseline wander, as a real front end picks up.
    this.#ecg = new Ecg(0, () => settings.heartRate, { noiseMv: 0.005, random, baselineWanderMv: 0.03 });
    this.#faults = new FaultInjector({ corruptRate: settings.corruptRate, dropRate: settings.dropRate }, random);
    this.#port = new SimPort({
      path: settings.path, baudRate: BAUD_RATE, parity: 'none', split: settings.split, splitSpreadMs: 8,
      disconnectEveryMs: settings.disconnectEveryMs, disconnectForMs: settings.disconnectForMs,
    }, random);
    this.#port.on('command', (bytes) => this.#onCommand(bytes));
    this.#port.on('error', (err) => this.emit('error', err));
    this.#loop = new PacedLoop(SAMPLE_RATE, settings.burstMs > 0 ? settings.burstMs : 20, (n, now) => this.#produce(n, now));
  }

  async start(): Promise<void> {
    await this.#port.open();
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#loop.stop();
    await this.#port.close();
  }

  #onCommand(bytes: Buffer): void {
    for (const byte of bytes) {
      if (byte === 0x62 /* b */) this.#streaming = true;
      else if (byte === 0x73 /* s */) this.#streaming = false;
      else if (byte === 0x76 /* v: soft reset */) this.#sampleNumber = 0;
    }
  }

  #produce(count: number, now: number): void {
    if (!this.#streaming) return;
    const frames: Buffer[] = [];
    const sent: Record<string, number[]> = Object.fromEntries(SIM_CHANNEL_CODES.map((code) => [code, []]));
    for (let i = 0; i < count; i++) {
      const millivolts = this.#ecg.leads(this.#sampleIndex++ / SAMPLE_RATE, SIM_LEADS);
      // `+ 0` turns Math.round's -0 into the 0 a 24-bit integer on the wire is.
      const counts = millivolts.map((mv) => Math.max(COUNTS_MIN, Math.min(COUNTS_MAX, Math.round(mv / this.#millivoltsPerCount))) + 0);
      frames.push(this.#faults.apply(buildPacket(this.#sampleNumber, counts)));
      // The board keeps counting while unplugged; the driver sees the gap.
      this.#sampleNumber = (this.#sampleNumber + 1) & 0xff;
      counts.forEach((c, ch) => sent[SIM_CHANNEL_CODES[ch]!]!.push(c * this.#millivoltsPerCount));
    }
    if (!this.#port.write(Buffer.concat(frames))) return;
    const values: SentValues = { t: now - ((count - 1) * 1000) / SAMPLE_RATE, waveformSamples: sent };
    this.emit('sent', values);
  }
}

/** A Cyton packet: A0, sample number, 8 x int24 big-endian, 6 aux bytes, footer C0. */
function buildPacket(sampleNumber: number, counts: number[]): Buffer {
  const packet = Buffer.alloc(33);
  packet[0] = 0xa0;
  packet[1] = sampleNumber;
  counts.forEach((c, ch) => packet.writeIntBE(c, 2 + ch * 3, 3));
  AUX_ACCEL.copy(packet, 26);
  packet[32] = 0xc0;
  return packet;
}

export const cytonSimulator: SimulatorCommand = {
  kind: 'cyton',
  summary: 'OpenBCI Cyton ECG front end (250 Hz, 8 channels) on a serial port',
  usage,
  async start(argv: string[]): Promise<RunningSimulator> {
    const { common, values } = parseSimArgs(argv, {
      gain: { type: 'string', default: '24' },
      autostart: { type: 'boolean', default: false },
    }, usage);
    const gain = numberOption(values, 'gain', 1, 24);
    if (![1, 2, 4, 6, 8, 12, 24].includes(gain)) throw new Error(`--gain must be an ADS1299 gain (1, 2, 4, 6, 8, 12, 24), got ${gain}`);
    const settings: CytonSimSettings = { ...common, gain, autostart: values.autostart === true };
    const simulation = new CytonSimulation(settings, seededRandom(common.seed));
    await simulation.start();
    createLogger('sim.cyton').info({ path: common.path, heartRate: common.heartRate, seed: common.seed }, 'cyton simulator started');
    return simulation;
  },
};
