// Slowly varying vital signs and synthetic waveforms for the simulator.

export { seededRandom } from '../../simulation/random.js';

/** A value that wanders around a mean and stays within bounds (mean-reverting random walk). */
class Wander {
  value: number;
  constructor(readonly mean: number, readonly min: number, readonly max: number, readonly step: number, readonly random: () => number) {
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
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
    this.#hr = new Wander(74, 60, 90, 1.2, random);
    this.#spo2 = new Wander(97.5, 95, 99, 0.4, random);
    this.#lowSpo2 = new Wander(87.5, 85, 89, 0.4, random);
    this.#rr = new Wander(16, 12, 22, 0.5, random);
    this.#temp = new Wander(36.8, 36.3, 37.4, 0.02, random);
    this.#sys = new Wander(118, 100, 140, 3, random);
    this.#dia = new Wander(76, 60, 90, 2, random);
  }

  /** Current heart rate (beats/min) without advancing, for the waveform generators. */
  get heartRate(): number {
    return this.#hr.value;
  }

  /** A desaturation episode (SpO2 85-89 %) starts or ends; it drives the SpO2-low alarm. */
  set desaturated(on: boolean) {
    this.#desaturated = on;
  }

  /** Values rounded as they are written on the wire. */
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

interface Wave {
  at: number;
  width: number;
  amplitude: number;
}

/**
 * ECG lead II as a sum of Gaussian P, Q, R, S and T waves per beat, in mV.
 * Keeps its phase between calls so consecutive windows join smoothly.
 */
export class EcgGenerator {
  #phase = 0;
  #rr = 0.8;

  constructor(readonly sampleRate: number, readonly random: () => number) {}

  /** n samples (mV) at the given heart rate. */
  samples(n: number, heartRate: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.push(this.#value(this.#phase, this.#rr) + (this.random() - 0.5) * 0.01);
      this.#phase += 1 / this.sampleRate;
      if (this.#phase >= this.#rr) {
        this.#phase -= this.#rr;
        this.#rr = 60 / heartRate;
      }
    }
    return out;
  }

  #value(t: number, rr: number): number {
    const r = 0.22;
    const waves: Wave[] = [
      { at: r - 0.16, width: 0.022, amplitude: 0.12 }, // P
      { at: r - 0.028, width: 0.008, amplitude: -0.12 }, // Q
      { at: r, width: 0.011, amplitude: 1.15 }, // R
      { at: r + 0.03, width: 0.009, amplitude: -0.28 }, // S
      { at: r + 0.24 * Math.sqrt(rr / 0.8), width: 0.045, amplitude: 0.3 }, // T, later at slow rates
    ];
    let v = 0;
    for (const w of waves) v += w.amplitude * Math.exp(-((t - w.at) ** 2) / (2 * w.width ** 2));
    return v;
  }
}

/** Plethysmogram (arbitrary units 0..4095): a systolic upstroke and a dicrotic wave per beat. */
export class PlethGenerator {
  #phase = 0;
  #rr = 0.8;

  constructor(readonly sampleRate: number) {}

  samples(n: number, heartRate: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = this.#phase / this.#rr;
      const systolic = Math.exp(-((x - 0.25) ** 2) / (2 * 0.07 ** 2));
      const dicrotic = 0.35 * Math.exp(-((x - 0.55) ** 2) / (2 * 0.08 ** 2));
      out.push(Math.round(800 + 2400 * (systolic + dicrotic)));
      this.#phase += 1 / this.sampleRate;
      if (this.#phase >= this.#rr) {
        this.#phase -= this.#rr;
        this.#rr = 60 / heartRate;
      }
    }
    return out;
  }
}
