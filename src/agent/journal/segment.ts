// Segment files and what the journal remembers about each one.
// A segment is named by the global index of its first record, zero-padded so
// that name order is log order; old segments are deleted whole.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReadingKind } from '../../devices/reading.js';
import type { RecordRef } from './format.js';

const NAME = /^(\d{20})\.seg$/;

export function segmentName(base: number): string {
  return `${String(base).padStart(20, '0')}.seg`;
}

export interface SegmentFile {
  base: number;
  name: string;
}

/** Segment files in log order, plus leftovers of interrupted compactions (*.tmp). */
export async function listSegmentFiles(dir: string): Promise<{ segments: SegmentFile[]; temporaries: string[] }> {
  const segments: SegmentFile[] = [];
  const temporaries: string[] = [];
  for (const name of await readdir(dir)) {
    const m = NAME.exec(name);
    if (m) segments.push({ base: Number(m[1]), name });
    else if (name.endsWith('.tmp')) temporaries.push(name);
  }
  segments.sort((a, b) => a.base - b.base);
  return { segments, temporaries };
}

/** The bytes of a segment and its valid records, in log order. */
export class SegmentView {
  #buf: Buffer;
  #end: number;
  readonly records: RecordRef[];

  constructor(buf: Buffer, end: number, records: RecordRef[]) {
    this.#buf = buf;
    this.#end = end;
    this.records = records;
  }

  get buffer(): Buffer {
    return this.#buf;
  }

  /** Adds records just written to the file (the active segment keeps its bytes in memory). */
  append(bytes: Buffer, refs: RecordRef[]): void {
    if (this.#end + bytes.length > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#end + bytes.length, this.#buf.length * 2, 64 * 1024));
      this.#buf.copy(grown, 0, 0, this.#end);
      this.#buf = grown;
    }
    bytes.copy(this.#buf, this.#end);
    for (const ref of refs) this.records.push({ ...ref, offset: ref.offset + this.#end });
    this.#end += bytes.length;
  }
}

/**
 * What the journal keeps in memory for every segment: per device, the seqs
 * present (ascending, because seqs rise in log order), for exact depth and
 * for deciding when a segment is wholly acknowledged. ~8 bytes per record.
 */
export class SegmentMeta {
  readonly base: number;
  readonly name: string;
  bytes = 0;
  /** Bytes known fsynced (or handed to the OS under fsync 'never'); only these are read out. */
  durableBytes = 0;
  records = 0;
  waveforms = 0;
  /** Delivery-ledger records in the file (not in records or seqs). */
  ledgerRecords = 0;
  readonly seqs = new Map<string, number[]>();
  /** Parsed contents while cached; always set for the active segment. */
  view: SegmentView | undefined;
  /** Bumped when the file is rewritten, so a read started before knows its view is stale. */
  generation = 0;

  constructor(base: number, name = segmentName(base)) {
    this.base = base;
    this.name = name;
  }

  path(dir: string): string {
    return join(dir, this.name);
  }

  add(deviceId: string, seq: number, kind: ReadingKind): void {
    let seqs = this.seqs.get(deviceId);
    if (!seqs) this.seqs.set(deviceId, (seqs = []));
    seqs.push(seq);
    this.records++;
    if (kind === 'waveform') this.waveforms++;
  }

  /** Forgets what the segment held (before re-adding what a compaction kept). */
  reset(): void {
    this.seqs.clear();
    this.records = 0;
    this.waveforms = 0;
    this.ledgerRecords = 0;
    this.view = undefined;
    this.generation++;
  }

  /** Records of deviceId with seq > after. */
  countAfter(deviceId: string, after: number): number {
    const seqs = this.seqs.get(deviceId);
    if (!seqs || seqs.length === 0) return 0;
    let lo = 0;
    let hi = seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqs[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    return seqs.length - lo;
  }

  /** Whether any record has seq > cursor(deviceId). */
  hasAfter(cursor: (deviceId: string) => number): boolean {
    for (const [deviceId, seqs] of this.seqs) {
      if (seqs.length > 0 && seqs[seqs.length - 1]! > cursor(deviceId)) return true;
    }
    return false;
  }

  /** Whether any record has seq <= acked(deviceId): reclaimable by compaction. */
  hasAtOrBefore(acked: (deviceId: string) => number): boolean {
    for (const [deviceId, seqs] of this.seqs) {
      if (seqs.length > 0 && seqs[0]! <= acked(deviceId)) return true;
    }
    return false;
  }
}

export async function readSegment(dir: string, meta: SegmentMeta): Promise<Buffer> {
  try {
    return await readFile(meta.path(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
}
