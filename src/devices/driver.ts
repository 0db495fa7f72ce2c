import { EventEmitter } from 'node:events';
import type { ChannelInfo, DeviceStatus, ReadingBody } from './reading.js';

/** A reading from a driver, tagged with the configured device it belongs to. */
export type DeviceReadingBody = ReadingBody & { deviceId: string };

export interface AcceptOptions {
  /**
   * Names the device message the readings came from (HL7: control id and a
   * hash of devices and bytes), for a device that resends a message whose
   * acknowledgement it did not get. A sink that has already taken a message
   * with this key takes nothing and resolves { duplicate: true }. The agent's
   * journal keeps keys durably with the readings (docs/JOURNAL.md, "Resend dedup").
   */
  dedupKey?: string;
}

export interface AcceptResult {
  /** The key was already taken: nothing of this array was taken again. */
  duplicate: boolean;
}

/**
 * Where a driver delivers readings. accept() resolves once the whole array is
 * durably taken (the agent journals it); only then may a driver acknowledge its
 * device (HL7 ACK). A rejection means nothing of the array was taken. A sink
 * that keeps no keys may ignore options.dedupKey and resolve nothing (void).
 */
export interface ReadingSink {
  accept(readings: DeviceReadingBody[], options?: AcceptOptions): Promise<AcceptResult | void>;
}

export interface DriverStatus {
  status: DeviceStatus;
  /** Why it is degraded or offline, e.g. 'port /dev/ttyUSB0 closed'. No patient data. */
  reason?: string;
}

/** Counters every driver keeps, for telemetry and tests. */
export interface DriverCounters {
  framesDecoded: number;
  framesRejected: number;
  bytesDiscarded: number;
  readingsEmitted: number;
  reconnects: number;
}

export interface DeviceDriverEvents {
  status: [deviceId: string, status: DriverStatus];
}

/**
 * One connection speaking one protocol, serving one or more configured devices
 * (an HL7 gateway listener may carry several monitors, told apart by OBX-18).
 * Framing turns bytes into frames, parsing turns frames into ReadingBody values,
 * and deliver() hands them to the sink. start() never rejects because a device
 * is absent: the driver reports 'offline' and keeps retrying until stop().
 */
export abstract class DeviceDriver extends EventEmitter<DeviceDriverEvents> {
  readonly counters: DriverCounters = {
    framesDecoded: 0,
    framesRejected: 0,
    bytesDiscarded: 0,
    readingsEmitted: 0,
    reconnects: 0,
  };
  readonly #status = new Map<string, DriverStatus>();
  readonly #channels = new Map<string, Map<string, ChannelInfo>>();

  constructor(protected readonly sink: ReadingSink) {
    super();
  }

  /** The configured device ids this driver serves. */
  abstract readonly deviceIds: readonly string[];
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  statusOf(deviceId: string): DriverStatus {
    return this.#status.get(deviceId) ?? { status: 'offline', reason: 'not started' };
  }

  /** Channels declared by config or seen so far, in first-seen order. */
  channelsOf(deviceId: string): ChannelInfo[] {
    return [...(this.#channels.get(deviceId)?.values() ?? [])];
  }

  protected declareChannel(deviceId: string, channel: ChannelInfo): void {
    let channels = this.#channels.get(deviceId);
    if (!channels) this.#channels.set(deviceId, (channels = new Map()));
    const key = `${channel.kind}:${channel.code}`;
    if (!channels.has(key)) channels.set(key, channel);
  }

  protected setStatus(deviceId: string, next: DriverStatus): void {
    const prev = this.#status.get(deviceId);
    if (prev && prev.status === next.status && prev.reason === next.reason) return;
    this.#status.set(deviceId, next);
    this.emit('status', deviceId, next);
  }

  /**
   * Hands readings to the sink; rejects (and counts nothing) when the sink does.
   * Resolves { duplicate: true } (and counts nothing) when the sink already took options.dedupKey.
   */
  protected async deliver(readings: DeviceReadingBody[], options?: AcceptOptions): Promise<AcceptResult> {
    if (readings.length === 0) return { duplicate: false };
    const result = await this.sink.accept(readings, options);
    if (result?.duplicate) return { duplicate: true };
    this.counters.readingsEmitted += readings.length;
    for (const r of readings) this.declareChannel(r.deviceId, { code: r.code, unit: r.unit, kind: r.kind });
    return { duplicate: false };
  }
}
