import { createLogger } from '../common/logger.js';
import type { DeviceInfo, Reading } from '../devices/reading.js';
import type { DeviceStreams } from '../streams/DeviceStreams.js';
import type { DeviceClusterLink, RemoteDeviceState } from '../streams/RemoteDevices.js';
import type { ClusterBus } from './bus.js';
import type { ClusterDirectory } from './directory.js';
import { deviceEntrySchema, type BusMessageOf, type DeviceEntry } from './messages.js';
import { keys, type RedisConnection } from './redis.js';

const log = createLogger('cluster-devices');

/**
 * Device flow across hubs. The hub a site agent is connected to stores its
 * readings (the shared Redis history) and publishes each stored batch, each
 * status change and each early alarm on the conference's channel; it also
 * keeps the device's entry in {hoichan}:devices:<conference> (a hash renewed
 * at every heartbeat), so a hub that opens the conference later lists the
 * device and replays it from the shared history.
 */
export class ClusterDevices implements DeviceClusterLink {
  readonly #hubId: string;
  readonly #redis: RedisConnection;
  readonly #bus: ClusterBus;
  readonly #directory: ClusterDirectory;
  readonly #streams: DeviceStreams;
  readonly #ttlMs: number;

  constructor(hubId: string, redis: RedisConnection, bus: ClusterBus, directory: ClusterDirectory, streams: DeviceStreams, entryTtlMs: number) {
    this.#hubId = hubId;
    this.#redis = redis;
    this.#bus = bus;
    this.#directory = directory;
    this.#streams = streams;
    this.#ttlMs = entryTtlMs;
    streams.cluster = this;
  }

  // ---- this hub's devices, out --------------------------------------------

  readings(event: Parameters<DeviceClusterLink['readings']>[0]): void {
    const { conferenceId, deviceId, session, to, readings, gaps } = event;
    this.#bus.toConference(conferenceId, { type: 'deviceReadings', conferenceId, deviceId, session, to, readings, ...(gaps ? { gaps } : {}) });
  }

  status(state: RemoteDeviceState): void {
    this.#write([state]);
    this.#bus.toConference(state.info.conferenceId, { type: 'deviceStatus', conferenceId: state.info.conferenceId, info: state.info, session: state.session, stored: state.stored });
  }

  alarm(conferenceId: string, deviceId: string, reading: Reading): void {
    this.#bus.toConference(conferenceId, { type: 'deviceAlarm', conferenceId, deviceId, reading });
  }

  /** At each heartbeat: the entries of this hub's connected devices again (Redis may have restarted empty). */
  heartbeat(): void {
    this.#write(this.#streams.ownedDevices());
  }

  #write(states: RemoteDeviceState[]): void {
    if (states.length === 0 || this.#redis.status !== 'ready') return;
    const multi = this.#redis.multi();
    for (const state of states) {
      const entry: DeviceEntry = { hubId: this.#hubId, info: state.info, session: state.session, stored: state.stored };
      const key = keys.conferenceDevices(state.info.conferenceId);
      multi.hset(key, state.info.deviceId, JSON.stringify(entry));
      multi.pexpire(key, this.#ttlMs);
    }
    multi.exec().catch((err: Error) => log.debug({ err: err.message }, 'device entries not written'));
  }

  // ---- other hubs' devices, in --------------------------------------------

  onMessage(message: BusMessageOf<'deviceReadings' | 'deviceStatus' | 'deviceAlarm'>): void {
    switch (message.type) {
      case 'deviceReadings':
        return this.#streams.remoteReadings(message.hub, {
          conferenceId: message.conferenceId,
          deviceId: message.deviceId,
          session: message.session,
          to: message.to,
          readings: message.readings,
          ...(message.gaps ? { gaps: message.gaps } : {}),
        });
      case 'deviceStatus':
        return this.#streams.remoteStatus(message.hub, { info: message.info, session: message.session, stored: message.stored });
      case 'deviceAlarm':
        return this.#streams.remoteAlarm(message.conferenceId, message.deviceId, message.reading);
    }
  }

  /** A conference opened here (or Redis is back): the other hubs' devices in it, as their entries say. */
  async load(conferenceId: string): Promise<void> {
    const entries = await this.#redis.hgetall(keys.conferenceDevices(conferenceId));
    for (const text of Object.values(entries)) {
      let entry: DeviceEntry;
      try {
        const parsed = deviceEntrySchema.safeParse(JSON.parse(text));
        if (!parsed.success) continue;
        entry = parsed.data;
      } catch {
        continue;
      }
      if (entry.hubId === this.#hubId || entry.info.conferenceId !== conferenceId) continue;
      // An entry of a hub that left says what it last knew; its agent is not there any more.
      const gone = this.#directory.reachable && this.#directory.hub(entry.hubId) === undefined;
      const info: DeviceInfo = gone ? { ...entry.info, status: 'offline', reason: 'site agent disconnected' } : entry.info;
      // The entry's watermark is as old as its last write; the history's is now. Read after this hub
      // subscribed to the conference, so every later batch comes over the bus and none is sent twice.
      const stored = Math.max(entry.stored, await this.#streams.storedWatermark(entry.info.deviceId));
      this.#streams.remoteStatus(entry.hubId, { info, session: entry.session, stored });
    }
  }

  conferenceClosed(conferenceId: string): void {
    this.#streams.remote.dropConference(conferenceId);
  }

  hubGone(hubId: string): void {
    this.#streams.remote.hubGone(hubId);
  }
}
