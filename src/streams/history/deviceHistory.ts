// Where the hub keeps each device stream: the highest contiguous seq stored
// (the watermark the uplink acks and deduplicates against), which site owns
// the device, and a bounded history for late joiners and resuming viewers,
// kept per device session (one device in one conference: see DeviceSession)
// and bounded by count, bytes and age. One interface, two implementations chosen at start: in memory for a single
// node, Redis Streams when REDIS_URL is set (survives a hub restart).

import type { Reading } from '../../devices/reading.js';

export interface HistoryLimits {
  /** Readings kept per device session (oldest go first). */
  maxReadings: number;
  /** Estimated bytes (readingBytes) kept per device session unless append passes a smaller budget (oldest go first). */
  maxBytes: number;
  /** Everything stored for a device (history, latest values, watermark, session) is forgotten this long after its last write. */
  ttlMs: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxReadings: 50_000, maxBytes: 16 * 1024 * 1024, ttlMs: 24 * 3600_000 };

/** Most distinct latest-value keys (kind:code) kept per device session; codes past it are only in the history. */
export const MAX_LATEST_KEYS = 1024;

/**
 * A device's stint in one conference. A hello that attaches a device to a
 * conference other than its session's starts a new session; the history and
 * latest values of the old one are dropped and never served again. Seqs are
 * per device, not per session (the agent's journal numbers a device's readings
 * once, whatever conference it is in), so the watermark and the dedup against
 * it carry across sessions; `startSeq` is where the session's readings begin,
 * and anything below it, even when it arrives after the session started (a
 * batch journaled before the reassignment), belongs to an earlier session.
 */
export interface DeviceSession {
  id: string;
  conferenceId: string;
  /** First seq that belongs to this session. */
  startSeq: number;
}

/** What the store knows of a device: its watermark and its current session. */
export interface DeviceRecord {
  watermark: number;
  session?: DeviceSession;
}

export interface DeviceHistoryStore {
  readonly kind: 'memory' | 'redis';
  /**
   * Whether the store can answer now (always, in memory; Redis connected).
   * While it cannot, the hub keeps accepted readings in a bounded buffer and
   * delivers them live without waiting for a store call to time out.
   */
  readonly reachable: boolean;
  /** The site that owns deviceId, recording siteId if none does yet. */
  claim(deviceId: string, siteId: string): Promise<string>;
  /** Highest contiguous seq stored for the device; 0 when nothing is. */
  watermark(deviceId: string): Promise<number>;
  /** Watermark and current session. */
  record(deviceId: string): Promise<DeviceRecord>;
  /** Makes `session` the device's current one and drops every reading and latest value of the previous one. */
  startSession(deviceId: string, session: DeviceSession): Promise<void>;
  /**
   * Stores readings (ascending seqs, all above the watermark) in the session
   * and moves the watermark to `through` (>= the last reading's seq: gaps may
   * follow it) as one step: after a crash either both happened or neither.
   * When another session has replaced `session`, only the watermark moves;
   * when the store has none (it expired while the device was idle), `session`
   * becomes the device's session again. The session's history is then trimmed, oldest first, to
   * `maxBytes` (default limits.maxBytes) and limits.maxReadings.
   */
  append(deviceId: string, session: DeviceSession, readings: readonly Reading[], through: number, maxBytes?: number): Promise<void>;
  /** The agent's journal was wiped and its seqs restart: forget the watermark (history stays). */
  resetWatermark(deviceId: string, seq: number): Promise<void>;
  /**
   * A resuming viewer's readings with after < seq <= upTo of the session,
   * newest first until `limit` readings or `maxBytes` (readingBytes) are
   * reached, plus the latest value of each latestKey (numeric and status per
   * code, alarm per alarm identity) in the span: oldest first.
   */
  range(deviceId: string, sessionId: string, after: number, upTo: number, limit: number, maxBytes: number): Promise<Reading[]>;
  /**
   * A late joiner's snapshot of the session, seq order, all seq <= upTo:
   * waveforms whose device time is within windowMs of the newest reading,
   * newest first while they fit in maxBytes, plus the latest numeric and
   * status reading of each code and the latest reading of each alarm
   * (latestKey), always, whatever their size.
   */
  recent(deviceId: string, sessionId: string, windowMs: number, upTo: number, maxBytes: number): Promise<Reading[]>;
  close(): Promise<void>;
}

/**
 * What a reading costs the hub, estimated cheaply and the same way everywhere
 * (history budgets, replay budgets, the uplink's byte rate): 8 bytes a sample
 * (the memory store keeps samples in a Float64Array) plus a fixed overhead for
 * the object and its strings.
 */
export function readingBytes(r: Reading): number {
  let bytes = READING_OVERHEAD + r.deviceId.length + r.code.length + r.unit.length;
  if (r.kind === 'waveform') bytes += r.samples.length * 8;
  else if (r.kind === 'alarm') bytes += r.text.length + (r.phase?.length ?? 0) + (r.alarmId?.length ?? 0) + (r.state?.length ?? 0) + (r.source ? 64 + JSON.stringify(r.source).length : 0);
  else if (r.kind === 'status') bytes += r.text.length;
  return bytes;
}

export const READING_OVERHEAD = 160;

/** One stored reading as the budgeted collectors see it: its size known without decoding it. */
export interface HistoryEntry {
  seq: number;
  t: number;
  kind: Reading['kind'];
  bytes: number;
  read(): Reading;
}

/**
 * The snapshot and resume rule shared by both stores. Walks the history newest
 * first: a snapshot takes waveforms within windowMs of the newest reading, a
 * resume (windowMs undefined) takes every reading above `after`; both stop at
 * `limit` readings or when the next would pass maxBytes. The latest value of
 * every other code in the span is always added: a viewer must see the current
 * numerics and alarms even when the waveforms did not fit.
 */
export async function collect(
  newestFirst: AsyncIterable<HistoryEntry> | Iterable<HistoryEntry>,
  latest: Iterable<Reading>,
  span: { after: number; upTo: number; windowMs?: number; limit: number; maxBytes: number },
): Promise<Reading[]> {
  const out = new Map<number, Reading>();
  let newestT: number | undefined;
  let bytes = 0;
  for await (const e of newestFirst) {
    if (e.seq > span.upTo) continue;
    if (e.seq <= span.after) break;
    if (span.windowMs !== undefined) {
      newestT ??= e.t;
      if (e.t < newestT - span.windowMs) break;
      if (e.kind !== 'waveform') continue;
    }
    if (bytes + e.bytes > span.maxBytes || out.size >= span.limit) break;
    bytes += e.bytes;
    out.set(e.seq, e.read());
  }
  for (const r of latest) if (r.seq > span.after && r.seq <= span.upTo) out.set(r.seq, r);
  return [...out.values()].sort((a, b) => a.seq - b.seq);
}

/** Numerics and status per code; alarms per alarm identity, so two concurrent alarms of one event code both stay. */
export function latestKey(r: Reading): string {
  return r.kind === 'alarm' ? `alarm:${r.alarmId ?? r.code}` : `${r.kind}:${r.code}`;
}
