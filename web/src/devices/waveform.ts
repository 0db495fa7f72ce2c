// A monitor-style waveform sweep on canvas: the trace is written left to right
// at 25 mm/s over a 1 mm / 5 mm grid, erasing a small gap ahead of the pen.
//
// Scale assumption: a CSS pixel is the CSS reference pixel, 96 per inch, so
// 1 mm = 96 / 25.4 = 3.78 CSS px. Browsers map CSS px to roughly that physical
// size on desktop monitors and phones alike, but nothing here is calibrated:
// the grid shows the scale, so a clinician can read time and amplitude off the
// squares (1 small square = 40 ms and, for ECG at 10 mm/mV, 0.1 mV) whatever
// the screen. Drawing uses devicePixelRatio so lines stay sharp.

export const CSS_PX_PER_MM = 96 / 25.4;
export const SWEEP_MM_PER_S = 25;
export const PX_PER_S = SWEEP_MM_PER_S * CSS_PX_PER_MM;
/** Blank gap kept ahead of the pen, in CSS px. */
const ERASE_AHEAD_PX = 10;
/** Samples are played out at their own rate from a small jitter buffer. */
const MIN_BUFFER_S = 0.25;
const MAX_BUFFER_S = 2;

export interface SweepOptions {
  color: string;
  /** mm per signal unit (ECG: 10 mm/mV); undefined autoscales to the recent range. */
  mmPerUnit: number | undefined;
  /** Where zero sits for fixed gain, as a fraction of the height from the top. */
  baseline?: number;
}

export class WaveformSweep {
  readonly element: HTMLElement;
  readonly #grid: HTMLCanvasElement;
  readonly #trace: HTMLCanvasElement;
  readonly #options: SweepOptions;
  readonly #queue: (number | null)[] = [];
  #sampleRate = 0;
  #playing = false;
  /** Fraction of a sample carried between frames. */
  #carry = 0;
  #lastFrameAt = 0;
  /** Pen position in CSS px and the last drawn y (undefined after a gap). */
  #x = 0;
  #lastY: number | undefined;
  #widthPx = 0;
  #heightPx = 0;
  #dpr = 1;
  /** Autoscale range, following the signal with a slow decay. */
  #min = Infinity;
  #max = -Infinity;
  /** Buffer target: grows with the longest chunk seen so play-out does not starve. */
  #bufferS = MIN_BUFFER_S;
  samplesDrawn = 0;

  constructor(options: SweepOptions) {
    this.#options = options;
    this.element = document.createElement('div');
    this.element.className = 'sweep';
    this.#grid = document.createElement('canvas');
    this.#grid.className = 'sweep-grid';
    this.#trace = document.createElement('canvas');
    this.#trace.className = 'sweep-trace';
    this.element.append(this.#grid, this.#trace);
    sweeps.add(this);
    ensureLoop();
  }

  get traceCanvas(): HTMLCanvasElement {
    return this.#trace;
  }

  /** Live samples only: late (backfilled) chunks never enter the sweep. */
  push(samples: (number | null)[], sampleRate: number): void {
    if (sampleRate !== this.#sampleRate) {
      this.#queue.length = 0;
      this.#sampleRate = sampleRate;
      this.#playing = false;
    }
    for (const s of samples) this.#queue.push(s);
    const chunkS = samples.length / sampleRate;
    this.#bufferS = Math.min(MAX_BUFFER_S, Math.max(this.#bufferS, chunkS * 1.25));
    // Far behind (tab was hidden, burst after a stall): skip to the newest data.
    const maxQueued = Math.ceil(sampleRate * (this.#bufferS + MAX_BUFFER_S));
    if (this.#queue.length > maxQueued) this.#queue.splice(0, this.#queue.length - Math.ceil(sampleRate * this.#bufferS));
  }

  dispose(): void {
    sweeps.delete(this);
  }

  /** Called once per animation frame by the shared loop. */
  frame(now: number): void {
    if (!this.element.isConnected) return;
    this.#fitCanvas();
    const elapsedS = this.#lastFrameAt ? Math.min(0.5, (now - this.#lastFrameAt) / 1000) : 0;
    this.#lastFrameAt = now;
    if (!this.#sampleRate) return;
    if (!this.#playing) {
      if (this.#queue.length < this.#sampleRate * this.#bufferS) return;
      this.#playing = true;
      this.#carry = 0;
      this.#updateRange(this.#queue); // scale from the whole buffer, not the first frame's few samples
    }
    const due = elapsedS * this.#sampleRate + this.#carry;
    let count = Math.floor(due);
    this.#carry = due - count;
    if (count > this.#queue.length) {
      count = this.#queue.length;
      this.#playing = false; // starved: wait for the buffer to refill
      this.#lastY = undefined;
    }
    if (count > 0) this.#draw(this.#queue.splice(0, count));
  }

  #draw(samples: (number | null)[]): void {
    const ctx = this.#trace.getContext('2d');
    if (!ctx || this.#widthPx === 0) return;
    ctx.setTransform(this.#dpr, 0, 0, this.#dpr, 0, 0);
    ctx.strokeStyle = this.#options.color;
    ctx.lineWidth = 1.6;
    ctx.lineJoin = 'round';
    const dx = PX_PER_S / this.#sampleRate;
    this.#updateRange(samples);
    // Clear the band the pen is about to cover plus the gap ahead, then draw.
    this.#erase(ctx, this.#x, this.#x + samples.length * dx + ERASE_AHEAD_PX);
    ctx.beginPath();
    let x = this.#x;
    if (this.#lastY !== undefined) ctx.moveTo(x, this.#lastY);
    for (const sample of samples) {
      x += dx;
      if (x >= this.#widthPx) {
        ctx.stroke();
        ctx.beginPath();
        x -= this.#widthPx;
        this.#lastY = undefined;
      }
      if (sample === null) {
        this.#lastY = undefined; // invalid sample: a gap, like a monitor
        continue;
      }
      const y = this.#yOf(sample);
      if (this.#lastY === undefined) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      this.#lastY = y;
    }
    ctx.stroke();
    this.#x = x;
    this.samplesDrawn += samples.length;
  }

  /** Clears [fromX, toX) in CSS px, wrapping past the right edge. */
  #erase(ctx: CanvasRenderingContext2D, fromX: number, toX: number): void {
    const w = this.#widthPx;
    if (toX - fromX >= w) {
      ctx.clearRect(0, 0, w, this.#heightPx);
      return;
    }
    ctx.clearRect(fromX, 0, Math.min(toX, w) - fromX, this.#heightPx);
    if (toX > w) ctx.clearRect(0, 0, toX - w, this.#heightPx);
  }

  #yOf(value: number): number {
    const { mmPerUnit, baseline = 0.6 } = this.#options;
    if (mmPerUnit !== undefined) return this.#heightPx * baseline - value * mmPerUnit * CSS_PX_PER_MM;
    const span = this.#max - this.#min || 1;
    const margin = this.#heightPx * 0.1;
    return margin + (1 - (value - this.#min) / span) * (this.#heightPx - 2 * margin);
  }

  #updateRange(samples: (number | null)[]): void {
    if (this.#options.mmPerUnit !== undefined) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of samples) {
      if (s === null) continue;
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
    if (lo > hi) return;
    // Expand at once, shrink slowly: the trace does not jump with each beat.
    const span = this.#max - this.#min;
    this.#min = lo < this.#min ? lo : this.#min + Math.min(lo - this.#min, span * 0.02);
    this.#max = hi > this.#max ? hi : this.#max - Math.min(this.#max - hi, span * 0.02);
  }

  #fitCanvas(): void {
    const width = this.element.clientWidth;
    const height = this.element.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (width === this.#widthPx && height === this.#heightPx && dpr === this.#dpr) return;
    this.#widthPx = width;
    this.#heightPx = height;
    this.#dpr = dpr;
    for (const canvas of [this.#grid, this.#trace]) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    this.#x = 0;
    this.#lastY = undefined;
    this.#drawGrid();
  }

  #drawGrid(): void {
    drawGrid(this.#grid, this.#dpr);
  }
}

/** The 1 mm / 5 mm monitor grid over a whole canvas (also the review page's strips). */
export function drawGrid(canvas: HTMLCanvasElement, dpr: number): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const step = CSS_PX_PER_MM * dpr;
  for (let i = 0; i * step <= Math.max(width, height); i++) {
    const major = i % 5 === 0;
    ctx.fillStyle = major ? 'rgba(148, 163, 184, 0.28)' : 'rgba(148, 163, 184, 0.1)';
    const p = Math.round(i * step);
    const w = major ? Math.max(1, Math.round(dpr)) : 1;
    if (p <= width) ctx.fillRect(p, 0, w, height);
    if (p <= height) ctx.fillRect(0, p, width, w);
  }
}

// One animation loop for every sweep on the page.
const sweeps = new Set<WaveformSweep>();
let looping = false;
function ensureLoop(): void {
  if (looping) return;
  looping = true;
  const tick = (now: number) => {
    for (const sweep of sweeps) sweep.frame(now);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
