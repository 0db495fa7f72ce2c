import type { Random } from '../../simulation/random.js';

/** One Gaussian wave of the beat template: amplitude (mV), centre and width (s, relative to R). */
interface Wave {
  amplitude: number;
  centre: number;
  width: number;
}

// Lead II P-QRS-T template at 60/min; centres stretch with sqrt(RR) like QT does.
const LEAD_II_TEMPLATE: Wave[] = [
  { amplitude: 0.15, centre: -0.16, width: 0.025 },
  { amplitude: -0.1, centre: -0.025, width: 0.01 },
  { amplitude: 1.1, centre: 0, width: 0.01 },
  { amplitude: -0.25, centre: 0.025, width: 0.01 },
  { amplitude: 0.3, centre: 0.25, width: 0.045 },
];

/** Lead weights relative to lead II, in Cyton channel order (I, II, III = II - I, V1..V5). */
const LEAD_WEIGHTS = [0.6, 1, 0.4, -0.5, -0.2, 0.4, 0.9, 1] as const;

/** The R peak sits this far into each beat. */
const R_OFFSET_FRACTION = 0.35;

/**
 * A plausible 8-channel ECG (mV) at a given heart rate: a P-QRS-T template per
 * beat, per-lead weights, slight baseline wander and noise.
 */
export class EcgModel {
  constructor(
    private readonly heartRate: number,
    private readonly random: Random,
    private readonly noiseMv = 0.005,
  ) {}

  /** The eight channel values (mV) at time tSeconds. */
  sample(tSeconds: number): number[] {
    const rr = 60 / this.heartRate;
    const stretch = Math.sqrt(rr);
    const phase = tSeconds % rr;
    const fromR = phase - R_OFFSET_FRACTION * rr;
    let leadII = 0;
    // Neighbouring beats overlap at high rates; include them.
    for (const offset of [-rr, 0, rr]) {
      for (const wave of LEAD_II_TEMPLATE) {
        const d = fromR + offset - wave.centre * (wave.centre > 0.05 ? stretch : 1);
        leadII += wave.amplitude * Math.exp(-(d * d) / (2 * wave.width * wave.width));
      }
    }
    const wander = 0.03 * Math.sin(2 * Math.PI * 0.2 * tSeconds);
    return LEAD_WEIGHTS.map((w) => w * leadII + wander + (this.random() - 0.5) * 2 * this.noiseMv);
  }
}
