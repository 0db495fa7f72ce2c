import { randomInt, type Random } from '../random.js';

export interface FaultOptions {
  /** Per frame: probability of flipping one byte or inserting a random byte. */
  corruptRate: number;
  /** Per frame: probability of dropping one byte. */
  dropRate: number;
}

export interface FaultCounters {
  corrupted: number;
  dropped: number;
}

/** Mangles frames as a noisy cable would, before they are written. */
export class FaultInjector {
  readonly counters: FaultCounters = { corrupted: 0, dropped: 0 };

  constructor(
    private readonly options: FaultOptions,
    private readonly random: Random,
  ) {}

  get active(): boolean {
    return this.options.corruptRate > 0 || this.options.dropRate > 0;
  }

  apply(frame: Buffer): Buffer {
    let bytes = frame;
    if (this.options.corruptRate > 0 && this.random() < this.options.corruptRate) {
      this.counters.corrupted++;
      bytes = this.random() < 0.5 ? this.#flip(bytes) : this.#insert(bytes);
    }
    if (this.options.dropRate > 0 && this.random() < this.options.dropRate) {
      this.counters.dropped++;
      const at = randomInt(this.random, 0, bytes.length - 1);
      bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    }
    return bytes;
  }

  #flip(bytes: Buffer): Buffer {
    const copy = Buffer.from(bytes);
    const at = randomInt(this.random, 0, copy.length - 1);
    copy[at] = copy[at]! ^ (1 << randomInt(this.random, 0, 7));
    return copy;
  }

  #insert(bytes: Buffer): Buffer {
    const at = randomInt(this.random, 0, bytes.length);
    return Buffer.concat([bytes.subarray(0, at), Buffer.of(randomInt(this.random, 0, 255)), bytes.subarray(at)]);
  }
}

/** Cuts a buffer at random points so frames arrive in pieces. */
export function splitRandomly(bytes: Buffer, random: Random, maxPieces = 4): Buffer[] {
  if (bytes.length < 2) return [bytes];
  const pieces = randomInt(random, 2, maxPieces);
  const cuts = new Set<number>();
  for (let i = 1; i < pieces; i++) cuts.add(randomInt(random, 1, bytes.length - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of sorted) {
    out.push(bytes.subarray(start, cut));
    start = cut;
  }
  out.push(bytes.subarray(start));
  return out;
}
