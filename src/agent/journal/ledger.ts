// The delivery ledger: which device messages the journal has taken, by key
// (HL7: control id + content hash), with the seqs they became. A resend of a
// taken message (its ACK was lost, or the agent died before sending it) is
// then answered without journaling it again, across restarts too.
//
// Durable in two places: a ledger record written in the same write as the
// message's readings (format.ts, kind 4), and ledger.json, a snapshot written
// before any segment holding ledger records is deleted or rewritten. open()
// loads the snapshot, then the records still in segments. Bounded by count
// and age (docs/JOURNAL.md, "Resend dedup"). Pure bookkeeping here; journal.ts
// does the file work.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { isSeqRanges, MAX_LEDGER_KEY_BYTES, type LedgerEntry } from './format.js';

export const LEDGER_FILE = 'ledger.json';

export interface LedgerBounds {
  /** Most messages remembered; the oldest go first. */
  maxEntries: number;
  /** Messages taken longer ago than this are forgotten (a resend then is journaled again). */
  maxAgeMs: number;
}

export const DEFAULT_LEDGER_BOUNDS: LedgerBounds = { maxEntries: 10_000, maxAgeMs: 60 * 60 * 1000 };

export class DeliveryLedger {
  /** Insertion order is taking order, so the oldest entry is first. */
  readonly #entries = new Map<string, LedgerEntry>();

  constructor(readonly bounds: LedgerBounds) {
    if (!(Number.isInteger(bounds.maxEntries) && bounds.maxEntries >= 0)) throw new RangeError('dedup maxEntries must be an integer >= 0');
    if (!(bounds.maxAgeMs >= 0)) throw new RangeError('dedup maxAgeMs must be >= 0');
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for key if it is within the bounds at `now`. */
  get(key: string, now: number): LedgerEntry | undefined {
    this.prune(now);
    return this.#entries.get(key);
  }

  /** Remembers (or refreshes) an entry; entries older than the bounds are ignored. */
  add(entry: LedgerEntry, now: number): void {
    if (now - entry.at > this.bounds.maxAgeMs) return;
    this.#entries.delete(entry.key);
    this.#entries.set(entry.key, entry);
    this.prune(now);
  }

  prune(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.bounds.maxEntries && now - entry.at <= this.bounds.maxAgeMs) break;
      this.#entries.delete(key);
    }
  }

  entries(): LedgerEntry[] {
    return [...this.#entries.values()];
  }
}

interface LedgerSnapshot {
  version: 1;
  entries: LedgerEntry[];
}

/** The snapshot's entries; [] when absent; throws when unreadable. */
export async function readLedgerSnapshot(dir: string): Promise<LedgerEntry[]> {
  let text: string;
  try {
    text = await readFile(join(dir, LEDGER_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<LedgerSnapshot>;
  if (parsed?.version !== 1 || !Array.isArray(parsed.entries)) throw new Error('ledger.json has an unknown version or shape');
  return parsed.entries.filter(
    (e): e is LedgerEntry =>
      typeof e?.key === 'string' &&
      e.key.length > 0 &&
      Buffer.byteLength(e.key) <= MAX_LEDGER_KEY_BYTES &&
      Number.isSafeInteger(e.at) &&
      isSeqRanges(e.ranges),
  );
}

export async function writeLedgerSnapshot(dir: string, entries: LedgerEntry[]): Promise<void> {
  const snapshot: LedgerSnapshot = { version: 1, entries };
  await writeFileAtomic(join(dir, LEDGER_FILE), JSON.stringify(snapshot), dir);
}

/**
 * Whether the readings right before a ledger record are exactly the seqs it
 * names. A record passes only if its whole batch is on disk before it; one
 * that does not (bit rot inside the batch) is ignored, so a resend is
 * journaled again rather than a lost reading being called taken.
 */
export function batchMatches(ranges: LedgerEntry['ranges'], before: ReadonlyArray<{ deviceId: string; seq: number }>): boolean {
  const expected = new Map<string, number>();
  let total = 0;
  for (const [deviceId, [from, to]] of Object.entries(ranges)) {
    expected.set(deviceId, from);
    total += to - from + 1;
  }
  if (total !== before.length) return false;
  for (const ref of before) {
    const next = expected.get(ref.deviceId);
    if (next === undefined || ref.seq !== next || next > ranges[ref.deviceId]![1]) return false;
    expected.set(ref.deviceId, next + 1);
  }
  return true;
}
