/**
 * Calls produce(n) with the number of frames due since the last call, so the
 * long-run rate is exact however late the timer fires.
 */
export class PacedLoop {
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #produced = 0;

  constructor(
    private readonly framesPerSecond: number,
    private readonly tickMs: number,
    private readonly produce: (frames: number, now: number) => void,
  ) {}

  start(): void {
    if (this.#timer) return;
    this.#startedAt = Date.now();
    this.#produced = 0;
    this.#timer = setInterval(() => this.#tick(), this.tickMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    const due = Math.floor(((now - this.#startedAt) * this.framesPerSecond) / 1000) - this.#produced;
    if (due <= 0) return;
    this.#produced += due;
    this.produce(due, now);
  }
}
