// The size-cap policy, as pure decisions; journal.ts does the file work.
//
// Over the cap, the journal compacts its oldest sealed segments first: each
// is rewritten keeping only un-acknowledged numeric, alarm and status records.
// Un-acknowledged waveforms are dropped (their seqs recorded as DroppedRange
// spans) and acknowledged records of any kind are reclaimed. Numerics, alarms
// and status are never dropped: when nothing is left to compact, appends are
// refused (JournalFullError).

import type { DroppedRange } from './checkpoint.js';
import type { RecordRef } from './format.js';
import type { SegmentMeta } from './segment.js';

export interface CompactionPlan {
  keep: RecordRef[];
  keptBytes: number;
  /** Per device, the waveforms this compaction drops. */
  dropped: Map<string, DroppedRange>;
  droppedWaveforms: number;
  reclaimedAcked: number;
}

export function planCompaction(
  records: readonly RecordRef[],
  acked: (deviceId: string) => number,
  alreadyDropped: (ref: RecordRef) => boolean,
): CompactionPlan {
  const plan: CompactionPlan = { keep: [], keptBytes: 0, dropped: new Map(), droppedWaveforms: 0, reclaimedAcked: 0 };
  for (const ref of records) {
    if (ref.seq <= acked(ref.deviceId)) {
      plan.reclaimedAcked++;
    } else if (ref.kind === 'waveform') {
      if (alreadyDropped(ref)) continue; // a crash left it behind after its range was recorded
      const range = plan.dropped.get(ref.deviceId);
      if (range) {
        range.to = ref.seq;
        range.count++;
      } else {
        plan.dropped.set(ref.deviceId, { from: ref.seq, to: ref.seq, count: 1 });
      }
      plan.droppedWaveforms++;
    } else {
      plan.keep.push(ref);
      plan.keptBytes += ref.length;
    }
  }
  return plan;
}

/** The oldest sealed segment compaction would shrink, if any (the last segment is the active one). */
export function nextCompactionCandidate(
  segments: readonly SegmentMeta[],
  acked: (deviceId: string) => number,
): SegmentMeta | undefined {
  for (let i = 0; i < segments.length - 1; i++) {
    const meta = segments[i]!;
    if (meta.waveforms > 0 || meta.hasAtOrBefore(acked)) return meta;
  }
  return undefined;
}

/** Whether seq lies in one of the ranges (sorted by from, non-overlapping). */
export function inRanges(ranges: readonly DroppedRange[], seq: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (seq < r.from) hi = mid - 1;
    else if (seq > r.to) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Inserts keeping the list sorted by from. */
export function insertRange(ranges: DroppedRange[], range: DroppedRange): void {
  let i = ranges.length;
  while (i > 0 && ranges[i - 1]!.from > range.from) i--;
  ranges.splice(i, 0, range);
}
