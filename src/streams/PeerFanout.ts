// Emits device readings to the peers of a conference, each reading once per
// peer in seq order, and serves a joining peer its replay (late-joiner
// snapshot or resume from the seqs it already has) without overlap: what the
// replay covers (seq <= the watermark at join) the live stream never repeats,
// and live readings that arrive while the replay loads wait behind it.

import type { DeviceInfo, Reading } from '../devices/reading.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { PeerNotify } from '../media/events.js';
import type { Gap } from './protocol.js';

/** deviceReadings as emitted: the DESIGN.md payload plus documented extensions. */
export interface DeviceReadingsEvent {
  deviceId: string;
  readings: Reading[];
  /** Extension: seqs of this span the site will never deliver (journal cap, corruption). */
  gaps?: Gap[];
  /** Extension: history sent at join, not new readings. */
  replay?: true;
}

type Emit = (event: string, data: unknown) => void;

interface PeerState {
  conferenceId: string;
  /** Per device: do not emit seqs at or below this (the peer has them from its replay or before a hub restart). */
  floors: Map<string, number>;
  /** Set while the replay loads: live events wait here, then follow it. */
  held?: Array<{ event: string; data: unknown }>;
}

export class PeerFanout {
  readonly #conferences: ConferenceManager;
  readonly #peers = new Map<string, PeerState>();
  readonly #sweep: NodeJS.Timeout;

  constructor(conferences: ConferenceManager) {
    this.#conferences = conferences;
    // Peers that left keep no state: forget them once their conference no longer lists them.
    this.#sweep = setInterval(() => this.#forgetDeparted(), 30_000);
    this.#sweep.unref();
  }

  /** Emits a device's new readings (and gaps) to every peer of its conference; returns how many peers got them. */
  readings(conferenceId: string, event: DeviceReadingsEvent): number {
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
      this.#send(peer.id, (e, d) => peer.notify(e as 'deviceReadings', d as never), 'deviceReadings', data);
      peers++;
    }
    return peers;
  }

  /** Extension event: an alarm that jumped its device's backlog (it is delivered again, in order, later). */
  alarm(conferenceId: string, deviceId: string, reading: Reading): void {
    const conference = this.#conferences.get(conferenceId);
    if (!conference || conference.closed) return;
    for (const peer of conference.peers) {
      const notify = peer.notify.bind(peer) as unknown as Emit;
      this.#send(peer.id, notify, 'deviceAlarm', { deviceId, reading });
    }
  }

  status(info: DeviceInfo): void {
    const conference = this.#conferences.get(info.conferenceId);
    if (!conference || conference.closed) return;
    for (const peer of conference.peers) this.#send(peer.id, (e, d) => peer.notify(e as 'deviceStatus', d as never), 'deviceStatus', info);
  }

  /**
   * A peer joined: `load` fetches its replay per device (history up to the
   * watermark `upTo` each device had at this instant); `resume` holds the seqs
   * the peer says it already has. Live readings meanwhile are held, then sent.
   */
  join(
    conferenceId: string,
    peerId: string,
    notify: PeerNotify,
    devices: Array<{ deviceId: string; upTo: number; resumeAfter?: number }>,
    load: (device: { deviceId: string; upTo: number; resumeAfter?: number }) => Promise<Reading[]>,
    onError: (err: Error) => void,
  ): void {
    const state: PeerState = { conferenceId, floors: new Map(), held: [] };
    for (const d of devices) {
      // After a hub restart the peer may hold seqs this hub has not stored yet: never send those again.
      if (d.resumeAfter !== undefined && d.resumeAfter > d.upTo) state.floors.set(d.deviceId, d.resumeAfter);
    }
    this.#peers.set(peerId, state);
    const emit = notify as unknown as Emit;
    // After the join reply has gone out, so the peer knows its devices before their readings.
    setImmediate(() => {
      void (async () => {
        for (const device of devices) {
          if (device.resumeAfter !== undefined && device.resumeAfter >= device.upTo) continue;
          try {
            const readings = await load(device);
            if (readings.length > 0) emit('deviceReadings', { deviceId: device.deviceId, readings, replay: true } satisfies DeviceReadingsEvent);
          } catch (err) {
            onError(err as Error);
          }
        }
        const held = state.held ?? [];
        state.held = undefined;
        for (const { event, data } of held) emit(event, data);
      })();
    });
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#peers.clear();
  }

  #send(peerId: string, notify: Emit, event: string, data: unknown): void {
    const held = this.#peers.get(peerId)?.held;
    if (held) held.push({ event, data });
    else notify(event, data);
  }

  #forgetDeparted(): void {
    for (const [peerId, state] of this.#peers) {
      const conference = this.#conferences.get(state.conferenceId);
      if (!conference || conference.closed || !conference.getPeer(peerId)) this.#peers.delete(peerId);
    }
  }
}
