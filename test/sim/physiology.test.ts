// The one simulated patient (src/sim/physiology.ts) that every simulator draws
// its ECG, pleth and numerics from: the properties each simulator relies on.

import { expect } from 'chai';
import { Ecg, Patient, Pleth } from '../../src/sim/physiology.js';
import { seededRandom } from '../../src/sim/random.js';

/** Indices of local maxima above a threshold. */
function peaks(values: number[], above: number): number[] {
  return values.flatMap((v, i) => (v > above && v >= (values[i - 1] ?? -Infinity) && v > (values[i + 1] ?? -Infinity) ? [i] : []));
}

describe('simulated physiology', () => {
  it('ECG: one R peak per beat at the heart rate, P-QRS-T amplitudes of lead II', () => {
    const ecg = new Ecg(0, () => 60);
    const trace = Array.from({ length: 5000 }, (_, i) => ecg.leadII(i / 500)); // 10 s at 500 Hz
    const r = peaks(trace, 0.8);
    expect(r.length).to.equal(10);
    for (let i = 1; i < r.length; i++) expect(r[i]! - r[i - 1]!).to.equal(500);
    expect(Math.max(...trace)).to.be.within(1.2, 1.4);
    expect(Math.min(...trace)).to.be.within(-0.35, -0.2);
  });

  it('ECG: a rate change takes effect at the next beat without tearing the trace', () => {
    let rate = 60;
    const ecg = new Ecg(0, () => rate);
    const trace: number[] = [];
    for (let i = 0; i < 5000; i++) {
      if (i === 2500) rate = 120;
      trace.push(ecg.leadII(i / 500));
    }
    const r = peaks(trace, 0.8);
    expect(r.at(-1)! - r.at(-2)!).to.equal(250);
    for (let i = 1; i < trace.length; i++) expect(Math.abs(trace[i]! - trace[i - 1]!)).to.be.below(0.5);
  });

  it('ECG leads: weights relative to lead II, noise bounded and seeded', () => {
    const clean = new Ecg(0, () => 72);
    const noisy = new Ecg(0, () => 72, { noiseMv: 0.005, random: seededRandom(1) });
    const again = new Ecg(0, () => 72, { noiseMv: 0.005, random: seededRandom(1) });
    for (let i = 0; i < 500; i++) {
      const t = i / 250;
      const [ii, v1] = clean.leads(t, ['II', 'V1']);
      expect(v1).to.be.closeTo(-0.5 * ii!, 1e-12);
      const n = noisy.leads(t, ['I', 'II']);
      expect(n).to.deep.equal(again.leads(t, ['I', 'II']));
      expect(n[1]! - ii!).to.be.within(-0.005, 0.005);
    }
    expect(() => new Ecg(0, () => 72, { noiseMv: 0.01 })).to.throw(/random/);
  });

  it('pleth: scaled per device, one beep per beat at the systolic peak', () => {
    const pleth = new Pleth(0, () => 75, { offset: 8, span: 85 });
    const samples = Array.from({ length: 600 }, (_, i) => pleth.sample(i / 60)); // 10 s at 60 Hz
    const values = samples.map((s) => Math.round(s.value));
    expect(Math.min(...values)).to.equal(8);
    expect(Math.max(...values)).to.be.within(88, 93);
    const beeps = samples.flatMap((s, i) => (s.beep ? [i] : []));
    expect(beeps.length).to.be.within(12, 13); // 75/min for 10 s
    for (const i of beeps) expect(values[i]).to.be.above(80);
    const hl7 = new Pleth(0, () => 75, { offset: 800, span: 2400 });
    const wide = Array.from({ length: 1250 }, (_, i) => hl7.sample(i / 125).value);
    expect(Math.max(...wide)).to.be.within(3000, 3200);
  });

  it('numerics: wander within physiological bounds around the resting rate; desaturation goes below 90 %', () => {
    const patient = new Patient(seededRandom(5), { heartRate: 74 });
    for (let i = 0; i < 2000; i++) {
      const v = patient.vitals();
      expect(v.heartRate).to.be.within(60, 90);
      expect(v.spo2).to.be.within(95, 99);
      expect(Math.abs(v.pulseRate - v.heartRate)).to.be.at.most(1);
      const bp = patient.bloodPressure();
      expect(bp.systolic - bp.diastolic).to.be.at.least(20);
    }
    patient.desaturated = true;
    for (let i = 0; i < 100; i++) expect(patient.vitals().spo2).to.be.within(85, 89);
  });
});
