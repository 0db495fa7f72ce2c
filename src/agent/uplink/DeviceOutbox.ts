// What one device sends next. Live readings come straight from the journal
// appends (the tail, kept in memory); anything older than the tail (backlog
// after an outage, a restart, a tail overflow) is read back from the journal.
// Either way a batch starts right after the last seq put on the wire, so a
// device's seqs go out in order; seqs the journal no longer has become gaps.

import type { DroppedRange } from '../journal/index.js';
import type { Reading } from '../../devices/reading.js';
import type { BatchMessage, Gap } from '../../streams/protocol.js';

/** The part of the Journal the outbox reads. */
export interface OutboxJournal {
  read(after?: ReadonlyMap<string, number>, limit?: number): Promise<Reading[]>;
  lastSeq(deviceId: string): number;
  droppedRanges(deviceId: string): DroppedRange[];
  depth(): { devices: Record<string, unknown> };
}

/** Limits how fast backlog goes up (readings/s); live readings do not draw on it. */
export class BacklogBudget {
  #tokens: number;
  #last = performance.now();

  constructor(private readonly perSecond: number) {
    // A burst of a quarter second: smooth pacing without starving small catch-ups.
    this.#tokens = this.#burst;
  }

  get #burst(): number {
    return Math.max(1, this.perSecond / 4);
  }

  available(): number {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    return Math.floor(this.#tokens);
  }

  take(n: number): void {
    this.#tokens -= n;
  }

  /** How long until one reading may go. */
  msUntilOne(): number {
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000));
  }
}

export type NextBatch =
  | { kind: 'batch'; batch: BatchMessage & { gaps: Gap[] }; backlog: boolean }
  | { kind: 'throttled'; retryMs: number }
  | { kind: 'idle' };

const MAX_TAIL = 5000;

export class DeviceOutbox {
  /** Highest seq put on the wire on this connection (at connect: what the hub has). */
  cursor = 0;
  /** Highest seq the hub acknowledged. */
  acked = 0;
  inFlight = 0;
  /** Whether the hub accepted this device on the current connection. */
  accepted = false;
  /** A pump loop is running for this device / was asked for meanwhile. */
  pumping = false;
  pumpAgain = false;
  /** The hub refused a batch of this connection (rate_limited): once the window drains, the cursor goes back to the last ack. */
  refused = false;
  /** A pump waiting out a rate_limited pause is scheduled (one timer per device, however many offers come meanwhile). */
  resumeTimer: NodeJS.Timeout | undefined;
  #tail: Reading[] = [];

  constructor(
    readonly deviceId: string,
    private readonly journal: OutboxJournal,
  ) {}

  /** Fresh readings of this device, just made durable. */
  offer(readings: readonly Reading[]): void {
    for (const r of readings) {
      const last = this.#tail[this.#tail.length - 1];
      if (!last || r.seq > last.seq) this.#tail.push(r);
      else if (!this.#tail.some((x) => x.seq === r.seq)) {
        // Two appends can resolve out of order: keep the tail sorted.
        this.#tail.push(r);
        this.#tail.sort((a, b) => a.seq - b.seq);
      }
    }
    // The journal holds everything: past this the backlog path reads it back.
    if (this.#tail.length > MAX_TAIL) this.#tail = this.#tail.slice(-MAX_TAIL / 2);
  }

  /** A (re)connection: the hub has everything up to hubAcked. */
  reset(hubAcked: number): void {
    this.cursor = hubAcked;
    this.acked = hubAcked;
    this.inFlight = 0;
    this.refused = false;
    this.accepted = true;
  }

  /** Whether a reading at seq would wait behind other readings of this device. */
  isBehind(seq: number, batchReadings: number): boolean {
    return seq - this.cursor > batchReadings;
  }

  async next(maxReadings: number, budget: BacklogBudget): Promise<NextBatch> {
    let drop = 0;
    while (drop < this.#tail.length && this.#tail[drop]!.seq <= this.cursor) drop++;
    if (drop > 0) this.#tail.splice(0, drop);

    const first = this.#tail[0];
    if (first && first.seq === this.cursor + 1) {
      let n = 1;
      while (n < this.#tail.length && n < maxReadings && this.#tail[n]!.seq === this.#tail[n - 1]!.seq + 1) n++;
      const readings = this.#tail.slice(0, n);
      return { kind: 'batch', batch: this.#batch(readings, []), backlog: false };
    }
    if (this.journal.lastSeq(this.deviceId) <= this.cursor) return { kind: 'idle' };

    const allowed = Math.min(maxReadings, budget.available());
    if (allowed < 1) return { kind: 'throttled', retryMs: budget.msUntilOne() };
    const readings = await this.journal.read(this.#onlyThisDevice(), allowed);
    const gaps: Gap[] = [];
    let expected = this.cursor + 1;
    for (const r of readings) {
      if (r.seq > expected) gaps.push(this.#gap(expected, r.seq - 1));
      expected = r.seq + 1;
    }
    if (readings.length === 0) {
      // Nothing durable after the cursor: either not fsynced yet, or the cap dropped the rest of a span.
      const dropped = this.journal.droppedRanges(this.deviceId).find((d) => d.from <= this.cursor + 1 && this.cursor + 1 <= d.to);
      if (!dropped) return { kind: 'idle' };
      gaps.push({ from: this.cursor + 1, to: dropped.to, reason: 'journal-cap' });
    }
    budget.take(readings.length);
    return { kind: 'batch', batch: this.#batch(readings, gaps), backlog: true };
  }

  #batch(readings: Reading[], gaps: Gap[]): BatchMessage & { gaps: Gap[] } {
    const lastReading = readings[readings.length - 1]?.seq ?? 0;
    const lastGap = gaps[gaps.length - 1]?.to ?? 0;
    return {
      deviceId: this.deviceId,
      from: this.cursor + 1,
      to: Math.max(lastReading, lastGap),
      readings: readings.map(withoutLate),
      gaps,
    };
  }

  #gap(from: number, to: number): Gap {
    const capped = this.journal.droppedRanges(this.deviceId).some((d) => d.from <= to && from <= d.to);
    return { from, to, reason: capped ? 'journal-cap' : 'lost' };
  }

  /** A read cursor that skips every other device of the journal. */
  #onlyThisDevice(): Map<string, number> {
    const after = new Map<string, number>();
    for (const id of Object.keys(this.journal.depth().devices)) after.set(id, Number.MAX_SAFE_INTEGER);
    after.set(this.deviceId, this.cursor);
    return after;
  }
}

function withoutLate(r: Reading): Reading {
  if (r.late === undefined) return r;
  const { late: _late, ...rest } = r;
  return rest as Reading;
}
