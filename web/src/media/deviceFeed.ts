import type { DeviceInfo, Reading } from '../contract';
import type { SignalingClient } from '../signaling';

/** What the feed tells the views (through the session's events). */
export type DeviceFeedEvents = {
  devices: [DeviceInfo[]];
  deviceStatus: [DeviceInfo];
  /** history: a replay sent at join (extension `replay: true`), not new readings. */
  deviceReadings: [string, Reading[], { history: boolean }];
};

/** Where the feed's events go: one callback per event. */
export type DeviceFeedSink = { [E in keyof DeviceFeedEvents]: (...args: DeviceFeedEvents[E]) => void };

/**
 * The conference's devices as the hub streams them (docs/PROTOCOL.md, "Devices
 * in a conference"): the join's device list, status changes, readings and
 * alarm notices, passed on to the panels. It remembers the highest seq seen
 * per device, so a reconnect to a hub that lost us resumes after it.
 */
export class DeviceFeed {
  /** Per device, the highest seq received. */
  readonly #seqs = new Map<string, number>();
  readonly #sink: DeviceFeedSink;

  constructor(signaling: SignalingClient, sink: DeviceFeedSink) {
    this.#sink = sink;
    const socket = signaling.socket;
    socket.on('deviceStatus', (info) => this.#sink.deviceStatus(info));
    socket.on('deviceReadings', ({ deviceId, readings, replay }) => {
      const last = readings[readings.length - 1]?.seq;
      if (last !== undefined && last > (this.#seqs.get(deviceId) ?? 0)) this.#seqs.set(deviceId, last);
      this.#sink.deviceReadings(deviceId, readings, { history: replay === true });
    });
    // Hub extension: an alarm that jumped its device's backlog (it comes again, in order, later).
    socket.on('deviceAlarm', ({ deviceId, reading }) => this.#sink.deviceReadings(deviceId, [reading], { history: false }));
  }

  /** Hub extension for the handshake: auth.deviceSeqs tells the hub which readings we already have. */
  handshakeAuth(): Record<string, unknown> {
    return this.#seqs.size ? { deviceSeqs: Object.fromEntries(this.#seqs) } : {};
  }

  /** The join reply's device list. */
  joined(devices: DeviceInfo[]): void {
    this.#sink.devices(devices);
  }
}
