// A plausible lead II ECG for the simulator: each beat is a sum of Gaussian
// bumps (P, Q, R, S, T) placed around its R peak, as in McSharry's ECGSYN, with
// the QT interval shortened for faster rates (Bazett: QT ~ sqrt(RR)).

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

const LEAD_II: Wave[] = [
  { at: -0.2, width: 0.025, mv: 0.15, qtScaled: false }, // P
  { at: -0.035, width: 0.01, mv: -0.12, qtScaled: false }, // Q
  { at: 0, width: 0.011, mv: 1.3, qtScaled: false }, // R
  { at: 0.035, width: 0.011, mv: -0.28, qtScaled: false }, // S
  { at: 0.26, width: 0.055, mv: 0.32, qtScaled: true }, // T
];

export class EcgSynth {
  #prevR: number;
  #nextR: number;
  #rrAtPrev: number;
  #rrAtNext: number;

  /** @param startS time (s) of the first sample; the first R peak falls a little after it. */
  constructor(
    startS: number,
    private heartRate: () => number,
  ) {
    const rr = 60 / heartRate();
    this.#prevR = startS - rr + 0.25;
    this.#nextR = startS + 0.25;
    this.#rrAtPrev = rr;
    this.#rrAtNext = rr;
  }

  /** Lead II potential in mV at time tS (seconds); calls must come in rising time order. */
  sample(tS: number): number {
    // Past the upcoming R peak: it becomes the previous one and the next beat is
    // scheduled at the heart rate of that moment, so rate changes stay smooth.
    while (tS >= this.#nextR) {
      const rr = 60 / this.heartRate();
      this.#prevR = this.#nextR;
      this.#rrAtPrev = this.#rrAtNext;
      this.#nextR += rr;
      this.#rrAtNext = rr;
    }
    return beat(tS - this.#prevR, this.#rrAtPrev) + beat(tS - this.#nextR, this.#rrAtNext);
  }
}

function beat(fromR: number, rr: number): number {
  let mv = 0;
  for (const wave of LEAD_II) {
    const center = wave.qtScaled ? wave.at * Math.sqrt(rr) : wave.at;
    const d = (fromR - center) / wave.width;
    if (Math.abs(d) < 6) mv += wave.mv * Math.exp(-0.5 * d * d);
  }
  return mv;
}
