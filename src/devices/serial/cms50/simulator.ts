import { EventEmitter } from 'node:events';
import type { RunningSimulator, SentValues, SimulatorCommand, SimulatorEvents } from '../../simulator.js';
import { createLogger } from '../../../common/logger.js';
import { FaultInjector } from '../sim/faults.js';
import { commonSimUsage, numberOption, parseSimArgs, type CommonSimSettings } from '../sim/options.js';
import { PacedLoop } from '../sim/pacedLoop.js';
import { randomInt, seededRandom, type Random } from '../../simulation/random.js';
import { SimPort } from '../sim/simPort.js';
import { PlethModel } from './plethModel.js';

// Built from the CMS50D+ live-packet description; shares no code with the driver.
const PACKET_RATE = 60;
const BAUD_RATE = 19200;
const SPO2_CODE = 'MDC_PULS_OXIM_SAT_O2';
const PULSE_RATE_CODE = 'MDC_PULS_OXIM_PULS_RATE';
const PLETH_CODE = 'MDC_PULS_OXIM_PLETH';
/** Values a CMS50D+ sends while it has no reading. */
const NO_SPO2 = 127;
const NO_PULSE_RATE = 255;
/** How often SpO2 and pulse rate drift a little. */
const VITALS_WALK_MS = 4000;
const FINGER_OUT_FOR_MS = 2000;

export interface Cms50SimSettings extends CommonSimSettings {
  /** Take the finger out for 2 s every this many ms (0 = never). */
  fingerOutEveryMs: number;
}

const usage = `hoichan simulate cms50 --path <tty> [options]
Simulates a Contec CMS50D+ pulse oximeter in live mode: 5-byte packets at 60 Hz, 19200 8O1.
${commonSimUsage}
  --finger-out-every-ms <ms>   finger out of the probe for 2 s every <ms> (default 0: never)`;

interface LiveValues {
  pleth: number;
  beep: boolean;
  spo2: number;
  pulseRate: number;
  fingerOut: boolean;
  signal: number;
}

class Cms50Simulation extends EventEmitter<SimulatorEvents> implements RunningSimulator {
  readonly #port: SimPort;
  readonly #faults: FaultInjector;
  readonly #loop: PacedLoop;
  readonly #pleth = new PlethModel();
  readonly #random: Random;
  readonly #targetRate: number;
  readonly #fingerOutEveryMs: number;
  #startedAt = 0;
  #sampleIndex = 0;
  #spo2: number;
  #pulseRate: number;
  #lastWalkAt = 0;

  constructor(settings: Cms50SimSettings, random: Random) {
    super();
    this.#random = random;
    this.#targetRate = settings.heartRate;
    this.#fingerOutEveryMs = settings.fingerOutEveryMs;
    this.#spo2 = randomInt(random, 95, 99);
    this.#pulseRate = Math.round(settings.heartRate);
    this.#faults = new FaultInjector({ corruptRate: settings.corruptRate, dropRate: settings.dropRate }, random);
    this.#port = new SimPort({
      path: settings.path, baudRate: BAUD_RATE, parity: 'odd', split: settings.split, splitSpreadMs: 8,
      disconnectEveryMs: settings.disconnectEveryMs, disconnectForMs: settings.disconnectForMs,
    }, random);
    this.#port.on('error', (err) => this.emit('error', err));
    this.#loop = new PacedLoop(PACKET_RATE, settings.burstMs > 0 ? settings.burstMs : 20, (n, now) => this.#produce(n, now));
  }

  async start(): Promise<void> {
    await this.#port.open();
    this.#startedAt = Date.now();
    this.#lastWalkAt = this.#startedAt;
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#loop.stop();
    await this.#port.close();
  }

  #produce(count: number, now: number): void {
    this.#walkVitals(now);
    const fingerOut = this.#isFingerOut(now);
    const frames: Buffer[] = [];
    const pleth: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = this.#sampleIndex++ / PACKET_RATE;
      const wave = this.#pleth.sample(t, this.#pulseRate, 1 / PACKET_RATE);
      const live: LiveValues = fingerOut
        ? { pleth: 0, beep: false, spo2: NO_SPO2, pulseRate: NO_PULSE_RATE, fingerOut: true, signal: 0 }
        : { pleth: wave.pleth, beep: wave.beep, spo2: this.#spo2, pulseRate: this.#pulseRate, fingerOut: false, signal: 6 };
      frames.push(this.#faults.apply(buildPacket(live)));
      pleth.push(live.pleth);
    }
    if (!this.#port.write(Buffer.concat(frames))) return;
    const values: SentValues = { t: now - ((count - 1) * 1000) / PACKET_RATE, waveformSamples: { [PLETH_CODE]: pleth } };
    // No numerics while the finger is out: the device has none (the driver reports null).
    if (!fingerOut) values.numerics = { [SPO2_CODE]: this.#spo2, [PULSE_RATE_CODE]: this.#pulseRate };
    this.emit('sent', values);
  }

  #isFingerOut(now: number): boolean {
    if (this.#fingerOutEveryMs <= 0) return false;
    const intoCycle = (now - this.#startedAt) % this.#fingerOutEveryMs;
    return now - this.#startedAt >= this.#fingerOutEveryMs && intoCycle < FINGER_OUT_FOR_MS;
  }

  #walkVitals(now: number): void {
    if (now - this.#lastWalkAt < VITALS_WALK_MS) return;
    this.#lastWalkAt = now;
    this.#spo2 = Math.max(95, Math.min(99, this.#spo2 + randomInt(this.#random, -1, 1)));
    const low = Math.max(30, this.#targetRate - 8);
    const high = Math.min(250, this.#targetRate + 8);
    this.#pulseRate = Math.max(low, Math.min(high, Math.round(this.#pulseRate + randomInt(this.#random, -2, 2))));
  }
}

/** b0: sync|beep|finger-out|signal; b1: pleth; b2: PR bit 7|bar graph; b3: PR low 7 bits; b4: SpO2. */
function buildPacket(v: LiveValues): Buffer {
  const bar = Math.min(15, Math.floor(v.pleth / 8));
  return Buffer.from([
    0x80 | (v.beep ? 0x40 : 0) | (v.fingerOut ? 0x10 : 0) | (v.signal & 0x0f),
    v.pleth & 0x7f,
    (v.pulseRate & 0x80 ? 0x40 : 0) | (v.fingerOut ? 0x20 : 0) | bar,
    v.pulseRate & 0x7f,
    v.spo2 & 0x7f,
  ]);
}

export const cms50Simulator: SimulatorCommand = {
  kind: 'cms50',
  summary: 'Contec CMS50D+ pulse oximeter (SpO2, pulse rate, 60 Hz pleth) on a serial port',
  usage,
  async start(argv: string[]): Promise<RunningSimulator> {
    const { common, values } = parseSimArgs(argv, { 'finger-out-every-ms': { type: 'string', default: '0' } }, usage);
    const settings: Cms50SimSettings = { ...common, fingerOutEveryMs: numberOption(values, 'finger-out-every-ms', 0, 86_400_000) };
    if (settings.fingerOutEveryMs > 0 && settings.fingerOutEveryMs <= FINGER_OUT_FOR_MS) {
      throw new Error(`--finger-out-every-ms must exceed ${FINGER_OUT_FOR_MS}`);
    }
    const simulation = new Cms50Simulation(settings, seededRandom(common.seed));
    await simulation.start();
    createLogger('sim.cms50').info({ path: common.path, heartRate: common.heartRate, seed: common.seed }, 'cms50 simulator started');
    return simulation;
  },
};
