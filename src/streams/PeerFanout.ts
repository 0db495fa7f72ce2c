// Emits device readings to the peers of a conference, each reading once per
// peer in seq order, and serves a joining peer its replay (late-joiner
// snapshot or resume from the seqs it already has) without overlap: what the
// replay covers (seq <= the watermark at join) the live stream never repeats,
// and live readings that arrive while the replay loads wait behind it.
// A peer that does not read (a stalled browser, a slow link) gets no
// waveforms while its socket has more than maxPeerBacklogBytes queued: the
// hub must not buffer for it without bound, and numerics, alarms and status
// are what a specialist needs first. What it missed is announced as a gap.

import type { DeviceGap, DeviceInfo, DeviceReadingsEvent, PeerEventMap, PeerEventName, PeerNotify, Reading } from '../contract/index.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { deviceMetrics } from '../telemetry/deviceMetrics.js';

/** Bytes queued on a peer's socket(s) and not yet handed to the network. */
export type PeerBacklog = (peerId: string) => number;

export interface PeerFanoutOptions {
  backlog?: PeerBacklog;
  /** Past this many queued bytes (or held while its replay loads), a peer's waveforms are withheld. */
  maxPeerBacklogBytes: number;
}

/** Extension: seqs the hub withheld from this peer because it was not reading fast enough. */
export type SlowReaderGap = DeviceGap & { reason: 'slow-reader' };

/** What a joining peer's replay is loaded for, per device. */
export interface JoinDevice {
  deviceId: string;
  upTo: number;
  resumeAfter?: number;
}

/** deviceReadings as emitted: the contract's payload with its gaps and replay extensions. */
export type { DeviceReadingsEvent };

/** An event held while a peer's replay loads: a name and the payload the contract gives it. */
type HeldEvent<E extends PeerEventName = PeerEventName> = { [K in E]: { event: K; data: PeerEventMap[K] } }[E];

/** Extension hook: sees a conference's device events as its peers get them (the recorder, src/recording/). */
export type DeviceTap = (event: 'deviceReadings' | 'deviceAlarm' | 'deviceStatus', data: DeviceReadingsEvent | { deviceId: string; reading: Reading } | DeviceInfo) => void;

interface PeerState {
  conferenceId: string;
  /** Per device: do not emit seqs at or below this (the peer has them from its replay or before a hub restart). */
  floors: Map<string, number>;
  /** Set while the replay loads: live events wait here, then follow it. */
  held?: HeldEvent[];
  /** Estimated bytes in held. */
  heldBytes: number;
}

export class PeerFanout {
  readonly #conferences: ConferenceManager;
  readonly #peers = new Map<string, PeerState>();
  readonly #sweep: NodeJS.Timeout;
  readonly #options: PeerFanoutOptions;
  readonly #taps = new Map<string, Set<DeviceTap>>();

  constructor(conferences: ConferenceManager, options: PeerFanoutOptions = { maxPeerBacklogBytes: 4 * 1024 * 1024 }) {
    this.#conferences = conferences;
    this.#options = options;
    // Peers that left keep no state: forget them once their conference no longer lists them.
    this.#sweep = setInterval(() => this.#forgetDeparted(), 30_000);
    this.#sweep.unref();
  }

  /** Emits a device's new readings (and gaps) to every peer of its conference; returns how many peers got them. */
  readings(conferenceId: string, event: DeviceReadingsEvent): number {
    this.#toTaps(conferenceId, 'deviceReadings', event);
    const conference = this.#conferences.get(conferenceId);
    if (!conference || conference.closed) return 0;
    let peers = 0;
    for (const peer of conference.peers) {
      const state = this.#peers.get(peer.id);
      let data: DeviceReadingsEvent = event;
      const floor = state?.floors.get(event.deviceId);
      if (state && floor !== undefined) {
        const readings = event.readings.filter((r) => r.seq > floor);
        const last = event.readings[event.readings.length - 1]?.seq ?? event.gaps?.[event.gaps.length - 1]?.to ?? 0;
        if (last > floor) state.floors.delete(event.deviceId);
        if (readings.length === 0 && !event.gaps?.some((g) => g.to > floor)) continue;
        data = { ...event, readings };
      }
      if (this.#backedUp(peer.id, state)) data = withoutWaveforms(data);
      this.#send(peer.id, peer.notify.bind(peer), { event: 'deviceReadings', data });
      peers++;
    }
    return peers;
  }

  /** Extension event: an alarm that jumped its device's backlog (it is delivered again, in order, later). */
  alarm(conferenceId: string, deviceId: string, reading: Reading): void {
    this.#toTaps(conferenceId, 'deviceAlarm', { deviceId, reading });
    const conference = this.#conferences.get(conferenceId);
    if (!conference || conference.closed) return;
    for (const peer of conference.peers) this.#send(peer.id, peer.notify.bind(peer), { event: 'deviceAlarm', data: { deviceId, reading } });
  }

  status(info: DeviceInfo): void {
    this.#toTaps(info.conferenceId, 'deviceStatus', info);
    const conference = this.#conferences.get(info.conferenceId);
    if (!conference || conference.closed) return;
    for (const peer of conference.peers) this.#send(peer.id, peer.notify.bind(peer), { event: 'deviceStatus', data: info });
  }

  /**
   * A peer joined: `load` fetches its replay per device (history up to the
   * watermark `upTo` each device had at this instant); `resume` holds the seqs
   * the peer says it already has. Live readings meanwhile are held, then sent.
   */
  join<D extends JoinDevice>(conferenceId: string, peerId: string, notify: PeerNotify, devices: D[], load: (device: D) => Promise<Reading[]>, onError: (err: Error) => void): void {
    const state: PeerState = { conferenceId, floors: new Map(), held: [], heldBytes: 0 };
    for (const d of devices) {
      // After a hub restart the peer may hold seqs this hub has not stored yet: never send those again.
      if (d.resumeAfter !== undefined && d.resumeAfter > d.upTo) state.floors.set(d.deviceId, d.resumeAfter);
    }
    this.#peers.set(peerId, state);
    // After the join reply has gone out, so the peer knows its devices before their readings.
    setImmediate(() => {
      void (async () => {
        for (const device of devices) {
          if (device.resumeAfter !== undefined && device.resumeAfter >= device.upTo) continue;
          try {
            const readings = await load(device);
            if (readings.length > 0) notify('deviceReadings', { deviceId: device.deviceId, readings, replay: true });
          } catch (err) {
            onError(err as Error);
          }
        }
        const held = state.held ?? [];
        state.held = undefined;
        for (const entry of held) emitHeld(notify, entry);
      })();
    });
  }

  /** Adds a listener of one conference's device events (every reading, before any per-peer filtering); returns its removal. */
  tap(conferenceId: string, listener: DeviceTap): () => void {
    let set = this.#taps.get(conferenceId);
    if (!set) this.#taps.set(conferenceId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#taps.get(conferenceId) === set) this.#taps.delete(conferenceId);
    };
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#peers.clear();
    this.#taps.clear();
  }

  #toTaps(conferenceId: string, event: Parameters<DeviceTap>[0], data: Parameters<DeviceTap>[1]): void {
    for (const listener of this.#taps.get(conferenceId) ?? []) listener(event, data);
  }

  #send(peerId: string, notify: PeerNotify, entry: HeldEvent): void {
    const state = this.#peers.get(peerId);
    if (state?.held) {
      state.held.push(entry);
      if (entry.event === 'deviceReadings') state.heldBytes += eventBytes(entry.data);
    } else emitHeld(notify, entry);
  }

  /** Whether this peer's waveforms are withheld now: its socket (or its held queue while the replay loads) is over the bound. */
  #backedUp(peerId: string, state: PeerState | undefined): boolean {
    const queued = state?.held ? state.heldBytes : (this.#options.backlog?.(peerId) ?? 0);
    return queued > this.#options.maxPeerBacklogBytes;
  }

  #forgetDeparted(): void {
    for (const [peerId, state] of this.#peers) {
      const conference = this.#conferences.get(state.conferenceId);
      if (!conference || conference.closed || !conference.getPeer(peerId)) this.#peers.delete(peerId);
    }
  }
}

/** Emits one event; generic over its name so the payload stays tied to it. */
function emitHeld<E extends PeerEventName>(notify: PeerNotify, entry: HeldEvent<E>): void {
  notify(entry.event, entry.data);
}

/** The event without its waveforms, which become gaps (merged where adjacent); counted as slow_reader. */
function withoutWaveforms(event: DeviceReadingsEvent): DeviceReadingsEvent {
  const dropped: SlowReaderGap[] = [];
  const kept: Reading[] = [];
  for (const r of event.readings) {
    if (r.kind !== 'waveform') {
      kept.push(r);
      continue;
    }
    const last = dropped[dropped.length - 1];
    if (last && last.to === r.seq - 1) last.to = r.seq;
    else dropped.push({ from: r.seq, to: r.seq, reason: 'slow-reader' });
  }
  if (dropped.length === 0) return event;
  deviceMetrics.readingsDiscarded.inc({ reason: 'slow_reader' }, event.readings.length - kept.length);
  const gaps = [...(event.gaps ?? []), ...dropped].sort((a, b) => a.from - b.from);
  return { ...event, readings: kept, gaps };
}

/** What an event costs to queue, estimated like readingBytes without walking the samples. */
function eventBytes(event: DeviceReadingsEvent): number {
  let bytes = 0;
  for (const r of event.readings) bytes += 160 + (r.kind === 'waveform' ? r.samples.length * 8 : 0);
  return bytes;
}
