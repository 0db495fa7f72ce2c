import { EventEmitter } from 'node:events';
import type { RunningSimulator, SentValues, SimulatorCommand, SimulatorEvents } from '../simulator.js';
import { createLogger } from '../../common/logger.js';
import { FaultInjector } from './faults.js';
import { commonSimUsage, numberOption, parseSimArgs, type CommonSimSettings } from './options.js';
import { PacedLoop } from './pacedLoop.js';
import { seededRandom, type Random } from '../random.js';
import { SimPort } from './simPort.js';
import { Patient, Pleth } from '../physiology.js';

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
  readonly #patient: Patient;
  readonly #pleth: Pleth;
  readonly #fingerOutEveryMs: number;
  #startedAt = 0;
  #sampleIndex = 0;
  #spo2: number;
  #pulseRate: number;
  #lastWalkAt = 0;

  constructor(settings: Cms50SimSettings, random: Random) {
    super();
    this.#fingerOutEveryMs = settings.fingerOutEveryMs;
    this.#patient = new Patient(random, { heartRate: settings.heartRate });
    this.#spo2 = 0;
    this.#pulseRate = 0;
    this.#takeVitals();
    // The CMS50's 0..127 pleth byte: a trough near 8 and peaks below 100.
    this.#pleth = new Pleth(0, () => this.#pulseRate, { offset: 8, span: 85 });
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
      const wave = this.#pleth.sample(t);
      const live: LiveValues = fingerOut
        ? { pleth: 0, beep: false, spo2: NO_SPO2, pulseRate: NO_PULSE_RATE, fingerOut: true, signal: 0 }
        : { pleth: Math.round(wave.value), beep: wave.beep, spo2: this.#spo2, pulseRate: this.#pulseRate, fingerOut: false, signal: 6 };
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
    this.#takeVitals();
  }

  #takeVitals(): void {
    const vitals = this.#patient.vitals();
    this.#spo2 = vitals.spo2;
    // 255 means "no pulse rate" on the wire, and below 30 the device shows none.
    this.#pulseRate = Math.max(30, Math.min(250, vitals.pulseRate));
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
