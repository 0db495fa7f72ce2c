// The one simulated patient every simulator draws from: slowly varying vital
// signs, an ECG and a plethysmogram. Each simulator asks for what its device
// has (sample rate, leads, noise, scale) and keeps its own framing and units
// on the wire; none of them carries a second copy of a heart.

import type { Random } from './random.js';

/** A value that wanders around a mean and stays within bounds (mean-reverting random walk). */
class Wander {
  value: number;
  constructor(readonly mean: number, readonly min: number, readonly max: number, readonly step: number, readonly random: Random) {
    this.value = mean;
  }
  next(): number {
    const pull = (this.mean - this.value) * 0.05;
    this.value = Math.min(this.max, Math.max(this.min, this.value + pull + (this.random() * 2 - 1) * this.step));
    return this.value;
  }
}

export interface Vitals {
  heartRate: number;
  spo2: number;
  pulseRate: number;
  respRate: number;
  temperature: number;
}

export interface BloodPressure {
  systolic: number;
  diastolic: number;
  mean: number;
}

export interface PatientOptions {
  /** Resting heart rate (beats/min) the rate wanders around: 14 below to 16 above it. */
  heartRate?: number;
}

export class Patient {
  readonly #hr: Wander;
  readonly #spo2: Wander;
  /** SpO2 while desaturated: below the monitor's 90 % low limit. */
  readonly #lowSpo2: Wander;
  #desaturated = false;
  readonly #rr: Wander;
  readonly #temp: Wander;
  readonly #sys: Wander;
  readonly #dia: Wander;
  readonly #random: Random;

  constructor(random: Random, options: PatientOptions = {}) {
    const hr = options.heartRate ?? 74;
    this.#random = random;
    this.#hr = new Wander(hr, Math.max(20, hr - 14), hr + 16, 1.2, random);
    this.#spo2 = new Wander(97.5, 95, 99, 0.4, random);
    this.#lowSpo2 = new Wander(87.5, 85, 89, 0.4, random);
    this.#rr = new Wander(16, 12, 22, 0.5, random);
    this.#temp = new Wander(36.8, 36.3, 37.4, 0.02, random);
    this.#sys = new Wander(118, 100, 140, 3, random);
    this.#dia = new Wander(76, 60, 90, 2, random);
  }

  /** Current heart rate (beats/min) without advancing, for the waveforms. */
  get heartRate(): number {
    return this.#hr.value;
  }

  /** A desaturation episode (SpO2 85-89 %) starts or ends; it drives the SpO2-low alarm. */
  set desaturated(on: boolean) {
    this.#desaturated = on;
  }

  /** The next values, rounded as monitors write them on the wire. */
  vitals(): Vitals {
    const hr = Math.round(this.#hr.next());
    return {
      heartRate: hr,
      spo2: Math.round(this.#desaturated ? this.#lowSpo2.next() : this.#spo2.next()),
      // Pulse rate from the oximeter follows ECG HR within a beat or two.
      pulseRate: hr + Math.round(this.#random() * 2 - 1),
      respRate: Math.round(this.#rr.next()),
      temperature: Math.round(this.#temp.next() * 10) / 10,
    };
  }

  bloodPressure(): BloodPressure {
    const systolic = Math.round(this.#sys.next());
    const diastolic = Math.min(systolic - 20, Math.round(this.#dia.next()));
    return { systolic, diastolic, mean: Math.round(diastolic + (systolic - diastolic) / 3) };
  }
}

/**
 * Beat times at a rate that may change: each beat is scheduled at the rate of
 * the moment the previous one passed, so rate changes never tear a beat.
 */
class BeatClock {
  prev: number;
  next: number;
  rrAtPrev: number;
  rrAtNext: number;
  /** Beats passed since the start, for one event (a beep) per beat. */
  index = 0;

  constructor(startS: number, firstAfterS: number, private readonly rate: () => number) {
    const rr = 60 / rate();
    this.prev = startS + firstAfterS - rr;
    this.next = startS + firstAfterS;
    this.rrAtPrev = rr;
    this.rrAtNext = rr;
  }

  /** Moves past every beat at or before tS; calls must come in rising time order. */
  advance(tS: number): void {
    while (tS >= this.next) {
      const rr = 60 / this.rate();
      this.prev = this.next;
      this.rrAtPrev = this.rrAtNext;
      this.next += rr;
      this.rrAtNext = rr;
      this.index++;
    }
  }
}

interface Wave {
  /** Offset from the R peak in seconds at RR = 1 s. */
  at: number;
  /** Width (standard deviation) in seconds. */
  width: number;
  /** Amplitude in mV. */
  mv: number;
  /** Whether the offset scales with sqrt(RR) (repolarisation does, depolarisation barely). */
  qtScaled: boolean;
}

// Lead II as a sum of Gaussian P, Q, R, S and T waves around each R peak, as in
// McSharry's ECGSYN, with the QT interval shortened at faster rates (Bazett: QT ~ sqrt(RR)).
const LEAD_II: Wave[] = [
  { at: -0.2, width: 0.025, mv: 0.15, qtScaled: false }, // P
  { at: -0.035, width: 0.01, mv: -0.12, qtScaled: false }, // Q
  { at: 0, width: 0.011, mv: 1.3, qtScaled: false }, // R
  { at: 0.035, width: 0.011, mv: -0.28, qtScaled: false }, // S
  { at: 0.26, width: 0.055, mv: 0.32, qtScaled: true }, // T
];

/** Lead weights relative to lead II (a frontal axis near +60 degrees; III = II - I). */
export const LEAD_WEIGHTS = { I: 0.6, II: 1, III: 0.4, V1: -0.5, V2: -0.2, V3: 0.4, V4: 0.9, V5: 1 } as const;
export type Lead = keyof typeof LEAD_WEIGHTS;

function beat(fromR: number, rr: number): number {
  let mv = 0;
  for (const wave of LEAD_II) {
    const center = wave.qtScaled ? wave.at * Math.sqrt(rr) : wave.at;
    const d = (fromR - center) / wave.width;
    if (Math.abs(d) < 6) mv += wave.mv * Math.exp(-0.5 * d * d);
  }
  return mv;
}

export interface EcgOptions {
  /** Uniform noise of up to this many mV either way on every sample (default 0: a clean trace). */
  noiseMv?: number;
  /** Needed when noiseMv > 0. */
  random?: Random;
  /** Respiratory baseline wander amplitude in mV, at 0.2 Hz (default 0). */
  baselineWanderMv?: number;
}

/** An ECG in mV at any time, for any lead; the first R peak falls 0.25 s after startS. */
export class Ecg {
  readonly #beats: BeatClock;
  readonly #noiseMv: number;
  readonly #random: Random;
  readonly #wanderMv: number;

  constructor(startS: number, heartRate: () => number, options: EcgOptions = {}) {
    this.#beats = new BeatClock(startS, 0.25, heartRate);
    this.#noiseMv = options.noiseMv ?? 0;
    if (this.#noiseMv > 0 && !options.random) throw new Error('an ECG with noise needs a random source');
    this.#random = options.random ?? (() => 0.5);
    this.#wanderMv = options.baselineWanderMv ?? 0;
  }

  /** Lead II at tS (seconds); calls must come in rising time order. */
  leadII(tS: number): number {
    return this.leads(tS, ['II'])[0]!;
  }

  /** The given leads at tS, each with its own noise. */
  leads(tS: number, leads: readonly Lead[]): number[] {
    const b = this.#beats;
    b.advance(tS);
    const clean = beat(tS - b.prev, b.rrAtPrev) + beat(tS - b.next, b.rrAtNext);
    const wander = this.#wanderMv === 0 ? 0 : this.#wanderMv * Math.sin(2 * Math.PI * 0.2 * tS);
    return leads.map((lead) => {
      const noise = this.#noiseMv === 0 ? 0 : (this.#random() - 0.5) * 2 * this.#noiseMv;
      return LEAD_WEIGHTS[lead] * clean + wander + noise;
    });
  }
}

export interface PlethScale {
  /** Value at the trough (no pulse). */
  offset: number;
  /** Value added at the systolic peak. */
  span: number;
}

/**
 * A photoplethysmogram: a systolic upstroke and a smaller dicrotic wave per
 * beat, as offset + span * shape (shape 0..1); the caller rounds and encodes.
 */
export class Pleth {
  readonly #beats: BeatClock;
  readonly #scale: PlethScale;
  #lastBeep = -1;

  constructor(startS: number, pulseRate: () => number, scale: PlethScale) {
    // Beats start at startS; the systolic peak comes a quarter of the way in.
    this.#beats = new BeatClock(startS, 0, pulseRate);
    this.#scale = scale;
  }

  /** The value at tS and whether it is the first sample at or past this beat's systolic peak (an oximeter's beep). */
  sample(tS: number): { value: number; beep: boolean } {
    const b = this.#beats;
    b.advance(tS);
    const x = (tS - b.prev) / b.rrAtPrev;
    const systolic = Math.exp(-((x - 0.25) ** 2) / (2 * 0.07 ** 2));
    const dicrotic = 0.35 * Math.exp(-((x - 0.55) ** 2) / (2 * 0.08 ** 2));
    const beep = x >= 0.25 && this.#lastBeep !== b.index;
    if (beep) this.#lastBeep = b.index;
    return { value: this.#scale.offset + this.#scale.span * Math.min(1, systolic + dicrotic), beep };
  }
}
