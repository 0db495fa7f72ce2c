import type { Reading } from '../../devices/reading.js';
import {
  DEFAULT_HISTORY_LIMITS,
  MAX_LATEST_KEYS,
  collect,
  latestKey,
  readingBytes,
  type DeviceHistoryStore,
  type DeviceRecord,
  type DeviceSession,
  type HistoryEntry,
  type HistoryLimits,
} from './deviceHistory.js';

/**
 * One stored reading. A waveform's samples live in a Float64Array (null as
 * NaN, which the uplink schema never lets through as a sample): 8 bytes a
 * sample whatever the values, where a JS array of numbers and nulls costs 8 to
 * 24 (boxed doubles once a null is mixed in), so readingBytes is what the
 * history really holds and the byte budget bounds the heap.
 */
interface Stored extends HistoryEntry {
  body: Reading;
  samples?: Float64Array;
}

interface DeviceLog {
  owner?: string;
  watermark: number;
  session?: DeviceSession;
  /** Ascending seq from `head`; trimmed by moving head, compacted once half is dead (amortised O(1)). */
  entries: Stored[];
  head: number;
  bytes: number;
  /** Latest non-waveform reading per kind:code of the session, kept even after the log trims it. */
  latest: Map<string, Reading>;
  /** Last write (claim, session, append, reset): the log is forgotten ttlMs after it. */
  touchedAt: number;
}

/** Single-node history: per device session, bounded by count, bytes and age. Lost when the hub stops. */
export class MemoryDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'memory' as const;
  readonly reachable = true;
  readonly #devices = new Map<string, DeviceLog>();
  readonly #limits: HistoryLimits;
  readonly #sweep: NodeJS.Timeout;

  constructor(limits: Partial<HistoryLimits> = {}) {
    this.#limits = { ...DEFAULT_HISTORY_LIMITS, ...limits };
    // Expired logs are also dropped when touched; the sweep frees the ones nobody asks about.
    this.#sweep = setInterval(() => this.#forgetExpired(), Math.min(60_000, Math.max(1000, this.#limits.ttlMs / 4)));
    this.#sweep.unref();
  }

  /** Devices with anything stored (for tests and the operations report). */
  get size(): number {
    this.#forgetExpired();
    return this.#devices.size;
  }

  async claim(deviceId: string, siteId: string): Promise<string> {
    const log = this.#write(deviceId);
    log.owner ??= siteId;
    return log.owner;
  }

  async watermark(deviceId: string): Promise<number> {
    return this.#live(deviceId)?.watermark ?? 0;
  }

  async record(deviceId: string): Promise<DeviceRecord> {
    const log = this.#live(deviceId);
    return { watermark: log?.watermark ?? 0, ...(log?.session ? { session: { ...log.session } } : {}) };
  }

  async startSession(deviceId: string, session: DeviceSession): Promise<void> {
    const log = this.#write(deviceId);
    log.session = { ...session };
    log.entries = [];
    log.head = 0;
    log.bytes = 0;
    log.latest = new Map();
  }

  async append(deviceId: string, session: DeviceSession, readings: readonly Reading[], through: number, maxBytes = this.#limits.maxBytes): Promise<void> {
    const log = this.#write(deviceId);
    log.watermark = Math.max(log.watermark, through);
    log.session ??= { ...session };
    if (log.session.id !== session.id) return;
    for (const r of readings) {
      log.entries.push(encode(r));
      log.bytes += log.entries[log.entries.length - 1]!.bytes;
      if (r.kind === 'waveform') continue;
      const key = latestKey(r);
      if (log.latest.has(key) || log.latest.size < MAX_LATEST_KEYS) log.latest.set(key, r);
    }
    const budget = Math.min(maxBytes, this.#limits.maxBytes);
    while (log.head < log.entries.length && (log.entries.length - log.head > this.#limits.maxReadings || log.bytes > budget)) {
      log.bytes -= log.entries[log.head]!.bytes;
      log.head++;
    }
    // Trimmed entries stay referenced (their sample buffers too) until compaction: compact early.
    if (log.head >= 32 && log.head * 2 >= log.entries.length) {
      log.entries = log.entries.slice(log.head);
      log.head = 0;
    }
  }

  async resetWatermark(deviceId: string, seq: number): Promise<void> {
    const log = this.#write(deviceId);
    log.watermark = seq;
    // Old seqs will be reused by the restarted journal: drop history that would now collide.
    log.entries = [];
    log.head = 0;
    log.bytes = 0;
    log.latest.clear();
  }

  async range(deviceId: string, sessionId: string, after: number, upTo: number, limit: number, maxBytes: number): Promise<Reading[]> {
    const log = this.#session(deviceId, sessionId);
    if (!log) return [];
    return collect(newestFirst(log, upTo), log.latest.values(), { after, upTo, limit, maxBytes });
  }

  async recent(deviceId: string, sessionId: string, windowMs: number, upTo: number, maxBytes: number): Promise<Reading[]> {
    const log = this.#session(deviceId, sessionId);
    if (!log) return [];
    return collect(newestFirst(log, upTo), log.latest.values(), { after: 0, upTo, windowMs, limit: this.#limits.maxReadings, maxBytes });
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#devices.clear();
  }

  #session(deviceId: string, sessionId: string): DeviceLog | undefined {
    const log = this.#live(deviceId);
    return log?.session?.id === sessionId ? log : undefined;
  }

  /** The device's log unless it expired (then it is forgotten now). */
  #live(deviceId: string): DeviceLog | undefined {
    const log = this.#devices.get(deviceId);
    if (log && Date.now() - log.touchedAt >= this.#limits.ttlMs) {
      this.#devices.delete(deviceId);
      return undefined;
    }
    return log;
  }

  #write(deviceId: string): DeviceLog {
    let log = this.#live(deviceId);
    if (!log) this.#devices.set(deviceId, (log = { watermark: 0, entries: [], head: 0, bytes: 0, latest: new Map(), touchedAt: 0 }));
    log.touchedAt = Date.now();
    return log;
  }

  #forgetExpired(): void {
    const oldest = Date.now() - this.#limits.ttlMs;
    for (const [deviceId, log] of this.#devices) if (log.touchedAt <= oldest) this.#devices.delete(deviceId);
  }
}

function encode(r: Reading): Stored {
  const bytes = readingBytes(r);
  if (r.kind !== 'waveform') return { seq: r.seq, t: r.t, kind: r.kind, bytes, body: r, read: readBody };
  const samples = new Float64Array(r.samples.length);
  for (let i = 0; i < samples.length; i++) samples[i] = r.samples[i] ?? Number.NaN;
  const body: Reading = { ...r, samples: [] };
  return { seq: r.seq, t: r.t, kind: r.kind, bytes, body, samples, read: readWaveform };
}

function readBody(this: Stored): Reading {
  return this.body;
}

function readWaveform(this: Stored): Reading {
  const samples = Array.from(this.samples!, (v) => (Number.isNaN(v) ? null : v));
  return { ...this.body, samples } as Reading;
}

function* newestFirst(log: DeviceLog, upTo: number): Generator<HistoryEntry> {
  let i = firstAbove(log.entries, log.head, upTo) - 1;
  for (; i >= log.head; i--) yield log.entries[i]!;
}

/** Index of the first entry at or after `from` whose seq is above `seq`. */
function firstAbove(entries: readonly Stored[], from: number, seq: number): number {
  let lo = from;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
