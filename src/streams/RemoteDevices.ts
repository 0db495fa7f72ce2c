// Devices whose site agent is connected to another hub of a cluster
// (src/cluster, docs/SCALING.md): their status and readings reach this hub
// over the cluster bus and go to this hub's peers of their conference
// through the same fan-out as local devices. The history is shared (Redis
// Streams), so a join here replays a remote device like a local one, and a
// batch that arrives after a seq this hub never saw (pub/sub lost it while
// Redis blinked) is preceded by the missing seqs read from the history:
// every viewer gets each seq once, in order. Seqs the history does not have
// either (a Redis that restarted empty, a fill past its bound) are announced
// as a `lost` gap, so a viewer knows they will not come.

import type { DeviceInfo, Reading } from '../devices/reading.js';
import { createLogger } from '../common/logger.js';
import type { DeviceHistoryStore, DeviceSession } from './history/deviceHistory.js';
import type { PeerFanout } from './PeerFanout.js';
import type { Gap } from './protocol.js';

const log = createLogger('remote-devices');

/** A device as another hub reports it. */
export interface RemoteDeviceState {
  info: DeviceInfo;
  session: DeviceSession | null;
  /** The device's watermark as that hub last said. */
  stored: number;
}

/** What this hub tells the others about its own devices (the cluster implements it). */
export interface DeviceClusterLink {
  readings(event: { conferenceId: string; deviceId: string; session: DeviceSession; to: number; readings: Reading[]; gaps?: Gap[] }): void;
  status(state: RemoteDeviceState): void;
  alarm(conferenceId: string, deviceId: string, reading: Reading): void;
}

interface Entry extends RemoteDeviceState {
  hubId: string;
  /** What this hub has sent its peers of the device: no seq at or below it goes again. */
  emitted: number;
  queue: Promise<unknown>;
  offlineSince?: number;
}

export class RemoteDevices {
  readonly #store: DeviceHistoryStore;
  readonly #fanout: PeerFanout;
  readonly #devices = new Map<string, Entry>();
  readonly #maxFill: number;
  readonly #fillBytes: number;
  readonly #ttlMs: number;

  constructor(store: DeviceHistoryStore, fanout: PeerFanout, options: { maxFillReadings: number; maxFillBytes: number; deviceTtlMs: number }) {
    this.#store = store;
    this.#fanout = fanout;
    this.#maxFill = options.maxFillReadings;
    this.#fillBytes = options.maxFillBytes;
    this.#ttlMs = options.deviceTtlMs;
  }

  /**
   * Remote devices listed in a conference (gone ones for less than
   * deviceTtlMs), with `upTo`: what this hub's peers have been sent, so a
   * joiner's replay ends where its live stream starts.
   */
  listed(conferenceId: string): Array<{ info: DeviceInfo; session: DeviceSession | null; upTo: number }> {
    const cutoff = Date.now() - this.#ttlMs;
    return [...this.#devices.values()]
      .filter((d) => d.info.conferenceId === conferenceId && !(d.offlineSince !== undefined && d.offlineSince <= cutoff))
      .map((d) => ({ info: d.info, session: d.session, upTo: d.emitted }));
  }

  has(deviceId: string): boolean {
    return this.#devices.has(deviceId);
  }

  /** A device's status (or its state from the other hub's snapshot). Tells this hub's peers when what they see changed. */
  status(hubId: string, state: RemoteDeviceState): void {
    const entry = this.#devices.get(state.info.deviceId);
    const changed = !entry || JSON.stringify(entry.info) !== JSON.stringify(state.info);
    if (!entry) {
      this.#devices.set(state.info.deviceId, { ...state, hubId, emitted: state.stored, queue: Promise.resolve() });
    } else {
      if (entry.session?.id !== state.session?.id) entry.emitted = Math.max(entry.emitted, (state.session?.startSeq ?? 1) - 1);
      Object.assign(entry, { info: state.info, session: state.session, hubId, stored: Math.max(entry.stored, state.stored) });
    }
    const current = this.#devices.get(state.info.deviceId)!;
    current.offlineSince = state.info.status === 'offline' ? (current.offlineSince ?? Date.now()) : undefined;
    if (changed) this.#fanout.status(state.info);
  }

  /** A batch another hub stored: the seqs this hub's peers missed first (from the history), then the batch. */
  readings(hubId: string, event: { conferenceId: string; deviceId: string; session: DeviceSession; to: number; readings: Reading[]; gaps?: Gap[] }): void {
    let entry = this.#devices.get(event.deviceId);
    if (!entry) {
      // Readings before any status (this hub attached the conference after the device's hello): list it as the batch says.
      entry = { hubId, info: { deviceId: event.deviceId, conferenceId: event.conferenceId, type: 'other', model: 'unknown', protocol: 'unknown', status: 'online', channels: [] }, session: event.session, stored: 0, emitted: event.session.startSeq - 1, queue: Promise.resolve() };
      this.#devices.set(event.deviceId, entry);
    }
    const e = entry;
    const run = e.queue.then(async () => {
      if (e.session?.id !== event.session.id) {
        e.session = event.session;
        e.emitted = Math.max(e.emitted, event.session.startSeq - 1);
      }
      const from = Math.min(event.readings[0]?.seq ?? Infinity, event.gaps?.[0]?.from ?? Infinity);
      if (!Number.isFinite(from) || event.to <= e.emitted) return;
      if (from > e.emitted + 1 && e.emitted >= event.session.startSeq - 1) {
        const missing = await this.#store.range(event.deviceId, event.session.id, e.emitted, from - 1, this.#maxFill, this.#fillBytes);
        const lost = holes(missing, e.emitted + 1, from - 1);
        log.info({ deviceId: event.deviceId, from: e.emitted + 1, to: from - 1, filled: missing.length, lost: lost.reduce((n, g) => n + g.to - g.from + 1, 0) }, 'readings the bus did not bring, sent from the history');
        this.#fanout.readings(event.conferenceId, { deviceId: event.deviceId, readings: missing, ...(lost.length > 0 ? { gaps: lost } : {}) });
      }
      const readings = event.readings.filter((r) => r.seq > e.emitted);
      const gaps = event.gaps?.filter((g) => g.to > e.emitted);
      this.#fanout.readings(event.conferenceId, { deviceId: event.deviceId, readings, ...(gaps && gaps.length > 0 ? { gaps } : {}) });
      e.emitted = event.to;
      e.stored = Math.max(e.stored, event.to);
    });
    e.queue = run.catch((err: Error) => log.warn({ deviceId: event.deviceId, err: err.message }, 'remote readings not delivered'));
  }

  alarm(conferenceId: string, deviceId: string, reading: Reading): void {
    const entry = this.#devices.get(deviceId);
    if (entry && reading.seq <= entry.emitted) return;
    this.#fanout.alarm(conferenceId, deviceId, reading);
  }

  /** The hub that had these devices left: they show offline until their agent is back on some hub. */
  hubGone(hubId: string): void {
    for (const entry of this.#devices.values()) {
      if (entry.hubId !== hubId || entry.info.status === 'offline') continue;
      this.status(hubId, { ...entry, info: { ...entry.info, status: 'offline', reason: 'site agent disconnected' } });
    }
  }

  /**
   * The device's agent is now connected to this hub (its hub died, or it
   * moved): the local state takes over from `upTo` on. What the other hub
   * stored but never got to publish (it died between the two) is sent from
   * the history first, so this hub's peers miss no seq.
   */
  async handOver(deviceId: string, session: DeviceSession | undefined, upTo: number): Promise<void> {
    const entry = this.#devices.get(deviceId);
    if (!entry) return;
    await entry.queue;
    this.#devices.delete(deviceId);
    if (!session || entry.session?.id !== session.id || upTo <= entry.emitted) return;
    const missing = await this.#store.range(deviceId, session.id, entry.emitted, upTo, this.#maxFill, this.#fillBytes);
    if (missing.length > 0) {
      log.info({ deviceId, from: entry.emitted + 1, to: upTo, filled: missing.length }, 'readings the previous hub stored but did not publish, sent from the history');
      this.#fanout.readings(session.conferenceId, { deviceId, readings: missing });
    }
  }

  /** The conference closed on this hub: nobody here follows its remote devices; a reopening reads them anew. */
  dropConference(conferenceId: string): void {
    for (const [id, d] of this.#devices) if (d.info.conferenceId === conferenceId) this.#devices.delete(id);
  }

  sweep(): void {
    const cutoff = Date.now() - this.#ttlMs;
    for (const [id, d] of this.#devices) if (d.offlineSince !== undefined && d.offlineSince <= cutoff) this.#devices.delete(id);
  }
}

/** The spans of from..to that `readings` (ascending seqs) do not cover, as `lost` gaps. */
function holes(readings: readonly Reading[], from: number, to: number): Gap[] {
  const out: Gap[] = [];
  let next = from;
  for (const r of readings) {
    if (r.seq < next) continue;
    if (r.seq > to) break;
    if (r.seq > next) out.push({ from: next, to: r.seq - 1, reason: 'lost' });
    next = r.seq + 1;
  }
  if (next <= to) out.push({ from: next, to, reason: 'lost' });
  return out;
}
