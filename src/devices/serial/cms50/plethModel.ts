/**
 * A photoplethysmogram pulse per beat: systolic upstroke and a smaller
 * dicrotic wave, scaled into the CMS50's 0..100 pleth range.
 */
export class PlethModel {
  /** Sample index of the last beep, so each beat beeps once. */
  #lastBeatBeeped = -1;

  /** Pleth value (0..100) and whether this sample is the beat's systolic peak (beep). */
  sample(tSeconds: number, pulseRate: number, samplePeriodS: number): { pleth: number; beep: boolean } {
    const rr = 60 / pulseRate;
    const beat = Math.floor(tSeconds / rr);
    const phase = (tSeconds - beat * rr) / rr;
    const systolic = 0.9 * gauss(phase, 0.22, 0.08);
    const dicrotic = 0.35 * gauss(phase, 0.5, 0.09);
    const pleth = Math.round(8 + 85 * Math.min(1, systolic + dicrotic));
    const peakTime = beat * rr + 0.22 * rr;
    const beep = beat !== this.#lastBeatBeeped && tSeconds >= peakTime && tSeconds - peakTime < samplePeriodS;
    if (beep) this.#lastBeatBeeped = beat;
    return { pleth, beep };
  }
}

function gauss(x: number, centre: number, width: number): number {
  const d = x - centre;
  return Math.exp(-(d * d) / (2 * width * width));
}
