import type { Reading } from '../devices/reading.js';
import { DEFAULT_HISTORY_LIMITS, latestKey, snapshotOf, type DeviceHistoryStore, type HistoryLimits } from './deviceHistory.js';

interface DeviceLog {
  owner?: string;
  watermark: number;
  /** Ascending seq; trimmed from the front in chunks so trimming stays O(1) amortised. */
  readings: Reading[];
  /** Latest non-waveform reading per kind:code, kept even after the log trims it. */
  latest: Map<string, Reading>;
}

/** Single-node history: per device an array bounded by maxReadings. Lost when the hub stops. */
export class MemoryDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'memory' as const;
  readonly #devices = new Map<string, DeviceLog>();

  constructor(private readonly limits: HistoryLimits = DEFAULT_HISTORY_LIMITS) {}

  #log(deviceId: string): DeviceLog {
    let log = this.#devices.get(deviceId);
    if (!log) this.#devices.set(deviceId, (log = { watermark: 0, readings: [], latest: new Map() }));
    return log;
  }

  async claim(deviceId: string, siteId: string): Promise<string> {
    const log = this.#log(deviceId);
    log.owner ??= siteId;
    return log.owner;
  }

  async watermark(deviceId: string): Promise<number> {
    return this.#devices.get(deviceId)?.watermark ?? 0;
  }

  async append(deviceId: string, readings: readonly Reading[], through: number): Promise<void> {
    const log = this.#log(deviceId);
    for (const r of readings) {
      log.readings.push(r);
      if (r.kind !== 'waveform') log.latest.set(latestKey(r), r);
    }
    const excess = log.readings.length - this.limits.maxReadings;
    if (excess > this.limits.maxReadings / 10) log.readings.splice(0, excess);
    log.watermark = Math.max(log.watermark, through);
  }

  async resetWatermark(deviceId: string, seq: number): Promise<void> {
    const log = this.#log(deviceId);
    log.watermark = seq;
    // Old seqs will be reused by the restarted journal: drop history that would now collide.
    log.readings = [];
    log.latest.clear();
  }

  async range(deviceId: string, after: number, upTo: number, limit: number): Promise<Reading[]> {
    const readings = this.#devices.get(deviceId)?.readings ?? [];
    const start = firstAbove(readings, after);
    const out: Reading[] = [];
    for (let i = start; i < readings.length && out.length < limit; i++) {
      if (readings[i]!.seq > upTo) break;
      out.push(readings[i]!);
    }
    return out;
  }

  async recent(deviceId: string, windowMs: number, upTo: number): Promise<Reading[]> {
    const log = this.#devices.get(deviceId);
    if (!log) return [];
    const readings = log.readings;
    function* newestFirst(): Generator<Reading> {
      for (let i = readings.length - 1; i >= 0; i--) yield readings[i]!;
    }
    return snapshotOf(newestFirst(), log.latest.values(), windowMs, upTo);
  }

  async close(): Promise<void> {
    this.#devices.clear();
  }
}

function firstAbove(readings: readonly Reading[], seq: number): number {
  let lo = 0;
  let hi = readings.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (readings[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
