// Emits device readings to the peers of a conference, each reading once per
// peer in seq order, and serves a joining peer its replay (late-joiner
// snapshot or resume from the seqs it already has) without overlap: what the
// replay covers (seq <= the watermark at join) the live stream never repeats,
// and live readings that arrive while the replay loads wait behind it.
// A peer that does not read (a stalled browser, a slow link) gets no
// waveforms while its socket has more than maxPeerBacklogBytes queued, and no
// numerics either past twice that: the hub must not buffer for it without
// bound, socket.io's ping queues behind the same bytes (a late pong drops the
// peer), and alarms and status are what a specialist needs first. What it
// missed is announced as a gap; its join replay waits, device by device,
// until its queue is under the bound.
// Peers that get the same payload get it in one emit (encoded once).

import type { DeviceGap, DeviceInfo, DeviceReadingsEvent, PeerEventMap, PeerEventName, PeerNotify, Reading } from '../contract/index.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { Peer } from '../media/Peer.js';
import { deviceMetrics } from '../telemetry/deviceMetrics.js';

/** Bytes queued on a peer's socket(s) and not yet handed to the network. */
export type PeerBacklog = (peerId: string) => number;

/** Sends one event to several peers at once, as each peer's notify would (the hub: one socket.io emit to their rooms). */
export type PeerBroadcast = <E extends PeerEventName>(peerIds: string[], event: E, data: PeerEventMap[E]) => void;

export interface PeerFanoutOptions {
  backlog?: PeerBacklog;
  /** Past this many queued bytes (or held while its replay loads), a peer's waveforms are withheld; past twice it, its numerics too. */
  maxPeerBacklogBytes: number;
  /** Without it, every peer is sent its own copy through its notify. */
  broadcast?: PeerBroadcast;
  /** How often a join replay waiting for a backed-up peer looks again. Default 50 ms. */
  replayPollMs?: number;
}

/** How far behind a peer's socket is: what it may still be sent. */
const enum Backlog {
  Clear = 0,
  /** Over maxPeerBacklogBytes: numerics, alarms and status, no waveforms. */
  Behind = 1,
  /** Over twice maxPeerBacklogBytes: alarms and status only. */
  Stalled = 2,
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
  /** Per device, its last held event while that carries only gaps: later gaps join it instead of queueing. */
  heldGapsOnly?: Map<string, DeviceReadingsEvent>;
  /** Its socket dropped: nothing is sent until it recovers (and is replayed its gap) or joins again. */
  away?: boolean;
  /** A later join (a recovery) took over: this state's replay stops and its held events are dropped. */
  superseded?: boolean;
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
    // Peers that get the event as it is, or as it is for a peer that is behind or stalled: one emit each group.
    const groups = new Map<Backlog, { data: DeviceReadingsEvent; peers: Peer[] }>();
    let peers = 0;
    for (const peer of conference.peers) {
      const state = this.#peers.get(peer.id);
      if (state?.away) continue;
      let data: DeviceReadingsEvent = event;
      const floor = state?.floors.get(event.deviceId);
      if (state && floor !== undefined) {
        const readings = event.readings.filter((r) => r.seq > floor);
        const last = event.readings[event.readings.length - 1]?.seq ?? event.gaps?.[event.gaps.length - 1]?.to ?? 0;
        if (last > floor) state.floors.delete(event.deviceId);
        if (readings.length === 0 && !event.gaps?.some((g) => g.to > floor)) continue;
        data = { ...event, readings };
      }
      const backlog = this.#backlog(peer.id, state);
      peers++;
      if (state?.held) {
        this.#hold(state, { event: 'deviceReadings', data: trimmed(data, backlog) });
      } else if (data !== event) {
        emitHeld(peer.notify.bind(peer), { event: 'deviceReadings', data: trimmed(data, backlog) });
      } else {
        let group = groups.get(backlog);
        if (!group) groups.set(backlog, (group = { data: trimmed(event, backlog), peers: [] }));
        group.peers.push(peer);
      }
    }
    for (const { data, peers: group } of groups.values()) this.#emitTo(group, 'deviceReadings', data);
    return peers;
  }

  /** Extension event: an alarm that jumped its device's backlog (it is delivered again, in order, later). */
  alarm(conferenceId: string, deviceId: string, reading: Reading): void {
    this.#toTaps(conferenceId, 'deviceAlarm', { deviceId, reading });
    this.#toPeers(conferenceId, { event: 'deviceAlarm', data: { deviceId, reading } });
  }

  status(info: DeviceInfo): void {
    this.#toTaps(info.conferenceId, 'deviceStatus', info);
    this.#toPeers(info.conferenceId, { event: 'deviceStatus', data: info });
  }

  /** The peer's socket dropped (it may recover): send it nothing until then; the recovery's replay fills the gap. */
  away(conferenceId: string, peerId: string): void {
    const state = this.#peers.get(peerId);
    if (state) {
      state.away = true;
      state.superseded = true;
    } else this.#peers.set(peerId, { conferenceId, floors: new Map(), heldBytes: 0, away: true, superseded: true });
  }

  /**
   * A peer joined: `load` fetches its replay per device (history up to the
   * watermark `upTo` each device had at this instant); `resume` holds the seqs
   * the peer says it already has. Live readings meanwhile are held, then sent.
   */
  join<D extends JoinDevice>(conferenceId: string, peerId: string, notify: PeerNotify, devices: D[], load: (device: D) => Promise<Reading[]>, onError: (err: Error) => void): void {
    const previous = this.#peers.get(peerId);
    // A recovery while an earlier replay of this peer still loads: that one stops, this one covers its span.
    if (previous) previous.superseded = true;
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
            // A replay is up to maxReplayBytes: device by device, each once the peer's socket has room.
            if (!(await this.#drained(peerId, state))) return;
            if (readings.length > 0) notify('deviceReadings', { deviceId: device.deviceId, readings, replay: true });
          } catch (err) {
            onError(err as Error);
          }
        }
        if (state.superseded) return;
        const held = state.held ?? [];
        state.held = undefined;
        state.heldGapsOnly = undefined;
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

  /** Alarm notices and status: every peer, whatever its backlog (they are few, small and what matters first). */
  #toPeers(conferenceId: string, entry: HeldEvent<'deviceAlarm' | 'deviceStatus'>): void {
    const conference = this.#conferences.get(conferenceId);
    if (!conference || conference.closed) return;
    const now: Peer[] = [];
    for (const peer of conference.peers) {
      const state = this.#peers.get(peer.id);
      if (state?.away) continue;
      if (state?.held) this.#hold(state, entry);
      else now.push(peer);
    }
    this.#emitTo(now, entry.event, entry.data);
  }

  #emitTo<E extends PeerEventName>(peers: Peer[], event: E, data: PeerEventMap[E]): void {
    if (peers.length === 0) return;
    if (this.#options.broadcast && peers.length > 1) this.#options.broadcast(peers.map((p) => p.id), event, data);
    else for (const peer of peers) peer.notify(event, data);
  }

  /** Queues an event behind the peer's loading replay; consecutive gap-only payloads of a device become one. */
  #hold(state: PeerState, entry: HeldEvent): void {
    if (entry.event !== 'deviceReadings') {
      state.held!.push(entry);
      return;
    }
    const data = entry.data;
    const gapsOnly = (state.heldGapsOnly ??= new Map());
    const previous = gapsOnly.get(data.deviceId);
    if (previous && data.readings.length === 0 && data.gaps) {
      previous.gaps = mergeGaps([...(previous.gaps ?? []), ...data.gaps]);
      return;
    }
    const copy: DeviceReadingsEvent = { ...data };
    state.held!.push({ event: 'deviceReadings', data: copy });
    state.heldBytes += eventBytes(copy);
    if (copy.readings.length === 0 && copy.gaps) gapsOnly.set(copy.deviceId, copy);
    else gapsOnly.delete(copy.deviceId);
  }

  /** How far behind this peer is: its socket's queue (or its held queue while the replay loads) against the bound. */
  #backlog(peerId: string, state: PeerState | undefined): Backlog {
    const queued = state?.held ? state.heldBytes : (this.#options.backlog?.(peerId) ?? 0);
    const bound = this.#options.maxPeerBacklogBytes;
    return queued > 2 * bound ? Backlog.Stalled : queued > bound ? Backlog.Behind : Backlog.Clear;
  }

  /** Waits until the peer's socket queue is under the bound; false when the peer left or another join took over. */
  async #drained(peerId: string, state: PeerState): Promise<boolean> {
    const poll = this.#options.replayPollMs ?? 50;
    for (;;) {
      if (state.superseded) return false;
      const conference = this.#conferences.get(state.conferenceId);
      if (!conference || conference.closed || !conference.getPeer(peerId)) return false;
      if ((this.#options.backlog?.(peerId) ?? 0) <= this.#options.maxPeerBacklogBytes) return true;
      await new Promise((resolve) => setTimeout(resolve, poll));
    }
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

/** The event as a peer this far behind gets it: waveforms (and, stalled, numerics) become slow-reader gaps. */
function trimmed(event: DeviceReadingsEvent, backlog: Backlog): DeviceReadingsEvent {
  if (backlog === Backlog.Clear) return event;
  return withheld(event, (r) => r.kind === 'waveform' || (backlog === Backlog.Stalled && r.kind === 'numeric'));
}

/** The event without the readings `drop` picks, which become gaps (merged where adjacent); counted as slow_reader. */
function withheld(event: DeviceReadingsEvent, drop: (r: Reading) => boolean): DeviceReadingsEvent {
  const dropped: SlowReaderGap[] = [];
  const kept: Reading[] = [];
  for (const r of event.readings) {
    if (!drop(r)) {
      kept.push(r);
      continue;
    }
    const last = dropped[dropped.length - 1];
    if (last && last.to === r.seq - 1) last.to = r.seq;
    else dropped.push({ from: r.seq, to: r.seq, reason: 'slow-reader' });
  }
  if (dropped.length === 0) return event;
  deviceMetrics.readingsDiscarded.inc({ reason: 'slow_reader' }, event.readings.length - kept.length);
  return { ...event, readings: kept, gaps: mergeGaps([...(event.gaps ?? []), ...dropped]) };
}

/** Gaps in seq order, adjacent ones of the same reason joined. */
function mergeGaps(gaps: DeviceGap[]): DeviceGap[] {
  const sorted = [...gaps].sort((a, b) => a.from - b.from);
  const merged: DeviceGap[] = [];
  for (const gap of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.reason === gap.reason && last.to + 1 === gap.from) merged[merged.length - 1] = { ...last, to: gap.to };
    else merged.push({ ...gap });
  }
  return merged;
}

/** What an event costs to queue, estimated like readingBytes without walking the samples. */
function eventBytes(event: DeviceReadingsEvent): number {
  let bytes = 0;
  for (const r of event.readings) bytes += 160 + (r.kind === 'waveform' ? r.samples.length * 8 : 0);
  return bytes;
}
