// Records a conference session as it happens, from the events the hub
// already has: ConferenceManager 'conference', Conference 'peerJoined',
// 'peerLeft' and 'close', DeviceStreams 'readings' and 'status', and the
// media stats poller's per-peer numbers. Every write goes to the bounded
// WriteQueue; nothing here waits for the database.

import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { AlarmBody, DeviceInfo, WaveformBody } from '../contract/index.js';
import type { Conference } from '../media/Conference.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { Peer } from '../media/Peer.js';
import type { DeviceStreamEvents } from '../streams/DeviceStreams.js';
import type { RecordingEvents, RecordingStarted, RecordingStopped, TrackEvent } from '../recording/types.js';
import type { PeerNetworkSample } from '../telemetry/HubTelemetry.js';
import type { NetworkSummary, NumericRow } from './RecordsStore.js';
import type { WriteQueue } from './WriteQueue.js';

export interface RecorderOptions {
  hubId: string;
  /** At most one stored numeric per device and code per this many ms (the first of each interval). */
  numericIntervalMs: number;
  /** Length of one stored waveform strip. */
  waveformWindowMs: number;
  /** A strip is started this long after the previous one began, and at each alarm's start. */
  waveformEveryMs: number;
  /** Strips per device channel per session, at most. */
  maxWaveformWindowsPerChannel: number;
  /** How often participants' network and devices' counters are written. */
  sampleIntervalMs: number;
  /** Called after a session's end is queued (the FHIR outbox). */
  onSessionEnded?: (sessionId: string) => void;
}

/** The parts of DeviceStreams the recorder listens to. */
/** The recording manager's events (src/recording): tracks become rows of the session's recordings. */
export type RecordingEventSource = Pick<EventEmitter<RecordingEvents>, 'on' | 'off'>;

/** One row per recorded track file. */
function trackRowId(recordingId: string, producerId: string): string {
  return `${recordingId}:${producerId}`;
}

export interface DeviceEventSource {
  readonly events: { on<E extends keyof DeviceStreamEvents>(event: E, listener: (...args: DeviceStreamEvents[E]) => void): unknown; off<E extends keyof DeviceStreamEvents>(event: E, listener: (...args: DeviceStreamEvents[E]) => void): unknown };
}

export type PeerNetworkSource = (peer: Peer) => PeerNetworkSample | undefined;

/**
 * Codes (numeric channels, waveform channels, open alarms) followed per device
 * per session, at most: the codes come from the site, and each one costs a map
 * entry for the session's lifetime. Past it, a new code is not recorded.
 */
const MAX_CODES_PER_DEVICE = 256;
/** Samples of one strip, at most: 10 s of a 2 kHz channel. */
const MAX_STRIP_SAMPLES = 20_000;
/** A reading whose first sample is this far from where the previous one ended starts a new strip (the stream had a hole). */
const STRIP_JOIN_TOLERANCE_MS = 250;

interface NetworkAccumulator {
  samples: number;
  bitrateInSum: number;
  bitrateOutSum: number;
  lossInMax: number;
  lossOutMax: number;
  rttSum: number;
  rttCount: number;
  rttMax: number;
  dirty: boolean;
}

interface LiveParticipant {
  id: string;
  net: NetworkAccumulator;
}

interface Strip {
  t: number;
  sampleRate: number;
  unit: string;
  samples: (number | null)[];
  nextT: number;
}

interface ChannelWaves {
  strip: Strip | undefined;
  written: number;
  lastStripAt: number | undefined;
  /** An alarm asked for a strip from the next reading. */
  triggered: boolean;
}

interface LiveDevice {
  readings: number;
  gaps: number;
  missing: number;
  lastReadingAt: number | null;
  onlineSince: number | undefined;
  onlineMs: number;
  channelsChanged: DeviceInfo['channels'] | undefined;
  lastNumericAt: Map<string, number>;
  openAlarms: Map<string, string>;
  waves: Map<string, ChannelWaves>;
}

interface LiveSession {
  id: string;
  conference: Conference;
  participants: Map<Peer, LiveParticipant>;
  devices: Map<string, LiveDevice>;
  detach: () => void;
}

export class Recorder {
  readonly #queue: WriteQueue;
  readonly #options: RecorderOptions;
  readonly #network: PeerNetworkSource;
  readonly #sessions = new Map<string, LiveSession>();
  /** Last announced info per device (model, protocol, channels), for a device whose readings reach a session first. */
  readonly #deviceInfo = new Map<string, DeviceInfo & { siteId: string }>();
  readonly #conferences: ConferenceManager;
  #devices: DeviceEventSource | undefined;
  #recordings: RecordingEventSource | undefined;
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(queue: WriteQueue, conferences: ConferenceManager, network: PeerNetworkSource, options: RecorderOptions) {
    this.#queue = queue;
    this.#options = options;
    this.#network = network;
    this.#conferences = conferences;
    conferences.on('conference', this.#onConference);
    // Conferences that exist already (none at hub start; some if the recorder starts late).
    for (const conference of conferences.list()) this.#onConference(conference);
    this.#timer = setInterval(() => this.sample(), options.sampleIntervalMs);
    this.#timer.unref();
  }

  /** Starts recording the devices streaming into recorded conferences (the hub starts its device streams after the recorder). */
  watchDevices(devices: DeviceEventSource): void {
    if (this.#closed || this.#devices) return;
    this.#devices = devices;
    devices.events.on('readings', this.#onReadings);
    devices.events.on('status', this.#onStatus);
  }

  /**
   * Stores each recorded track file (src/recording) in the session it belongs
   * to: a row when its ffmpeg starts, its end, size and sender clock when the
   * file is finished. Who started and stopped it is the token subject only.
   */
  watchRecordings(recordings: RecordingEventSource): void {
    if (this.#closed || this.#recordings) return;
    this.#recordings = recordings;
    recordings.on('started', this.#onRecordingStarted);
    recordings.on('stopped', this.#onRecordingStopped);
    recordings.on('trackStarted', this.#onTrackStarted);
    recordings.on('trackStopped', this.#onTrackStopped);
  }

  readonly #recordingsLive = new Map<string, { startedBy: string; dir: string; sessionId: string | undefined }>();

  readonly #onRecordingStarted = (e: RecordingStarted): void => {
    this.#recordingsLive.set(e.recordingId, { startedBy: e.by.sub, dir: e.dir, sessionId: this.sessionOf(e.conferenceId) });
  };

  readonly #onRecordingStopped = (e: RecordingStopped): void => {
    // The manager reports it once every track file is final: the rows are all written (the queue keeps order).
    const live = this.#recordingsLive.get(e.recordingId);
    this.#recordingsLive.delete(e.recordingId);
    if (live?.sessionId) this.#queue.enqueue('essential', 'recording stop', (s) => s.recordingStopped(e.recordingId, e.by.sub));
  };

  readonly #onTrackStarted = (e: TrackEvent): void => {
    const live = this.#recordingsLive.get(e.recordingId);
    const sessionId = live?.sessionId;
    if (!live || !sessionId) return;
    const t = e.sidecar;
    const row = {
      id: trackRowId(e.recordingId, t.producerId),
      sessionId,
      peerId: t.peerId,
      producerId: t.producerId,
      trackKind: t.kind,
      mimeType: t.codec.mimeType,
      filePath: join(live.dir, t.file),
      startedAt: t.startedWallMs,
      startedBy: live.startedBy,
    };
    this.#queue.enqueue('essential', 'recording track', (s) => s.addRecording(row));
  };

  readonly #onTrackStopped = (e: TrackEvent): void => {
    if (!this.#recordingsLive.get(e.recordingId)?.sessionId) return;
    const t = e.sidecar;
    const end = {
      endedAt: t.endedWallMs ?? t.finalisedWallMs ?? Date.now(),
      bytes: t.bytes,
      rtpClockRate: t.codec.clockRate,
      rtpTimestampAtStart: t.firstPacket?.rtpTimestamp ?? null,
    };
    this.#queue.enqueue('essential', 'recording track end', (s) => s.recordingEnded(trackRowId(e.recordingId, t.producerId), end));
  };

  /** The live session id of a conference, if it is being recorded. */
  sessionOf(conferenceId: string): string | undefined {
    return this.#sessions.get(conferenceId)?.id;
  }

  /** Samples every participant's network and writes it and the devices' counters. Runs every sampleIntervalMs; tests call it. */
  sample(): void {
    for (const session of this.#sessions.values()) {
      for (const [peer, participant] of session.participants) {
        this.#sampleNetwork(peer, participant);
        this.#writeNetwork(participant);
      }
      for (const [deviceId, device] of session.devices) this.#writeDevice(session.id, deviceId, device, Date.now());
    }
  }

  /** Ends every live session (the hub is stopping) and stops listening; the queue is flushed by its owner. */
  close(): void {
    if (this.#closed) return;
    for (const session of [...this.#sessions.values()]) this.#endSession(session, 'hub_stopped');
    this.#closed = true;
    clearInterval(this.#timer);
    this.#conferences.off('conference', this.#onConference);
    this.#devices?.events.off('readings', this.#onReadings);
    this.#devices?.events.off('status', this.#onStatus);
    this.#recordings?.off('started', this.#onRecordingStarted);
    this.#recordings?.off('stopped', this.#onRecordingStopped);
    this.#recordings?.off('trackStarted', this.#onTrackStarted);
    this.#recordings?.off('trackStopped', this.#onTrackStopped);
  }

  // ---- conferences and peers ---------------------------------------------------

  readonly #onConference = (conference: Conference): void => {
    if (this.#closed || conference.closed || this.#sessions.get(conference.id)?.conference === conference) return;
    const id = randomUUID();
    const startedAt = Date.now();
    const hubId = this.#options.hubId;
    this.#queue.enqueue('essential', 'session start', (s) => s.startSession({ id, conferenceId: conference.id, hubId, startedAt }));
    const onJoined = (peer: Peer) => this.#peerJoined(session, peer);
    const onLeft = (peer: Peer) => this.#peerLeft(session, peer);
    const onClose = () => this.#endSession(session, 'conference_closed');
    conference.on('peerJoined', onJoined);
    conference.on('peerLeft', onLeft);
    conference.once('close', onClose);
    const session: LiveSession = {
      id,
      conference,
      participants: new Map(),
      devices: new Map(),
      detach: () => {
        conference.off('peerJoined', onJoined);
        conference.off('peerLeft', onLeft);
        conference.off('close', onClose);
      },
    };
    this.#sessions.set(conference.id, session);
    for (const peer of conference.peers) this.#peerJoined(session, peer);
  };

  #peerJoined(session: LiveSession, peer: Peer): void {
    if (session.participants.has(peer)) return;
    const participant: LiveParticipant = { id: randomUUID(), net: emptyNetwork() };
    session.participants.set(peer, participant);
    const row = {
      id: participant.id,
      sessionId: session.id,
      peerId: peer.id,
      userId: peer.userId,
      displayName: peer.displayName,
      role: peer.role,
      siteId: peer.site,
      hubId: this.#options.hubId,
      joinedAt: Date.now(),
    };
    this.#queue.enqueue('essential', 'participant join', (s) => s.addParticipant(row));
  }

  #peerLeft(session: LiveSession, peer: Peer): void {
    const participant = session.participants.get(peer);
    if (!participant) return;
    session.participants.delete(peer);
    // The last poll's numbers are the best there are: the peer's streams are closed now.
    this.#writeNetwork(participant);
    const leftAt = Date.now();
    this.#queue.enqueue('essential', 'participant leave', (s) => s.participantLeft(participant.id, leftAt));
  }

  #endSession(session: LiveSession, reason: string): void {
    if (this.#sessions.get(session.conference.id) !== session) return;
    this.#sessions.delete(session.conference.id);
    session.detach();
    const endedAt = Date.now();
    for (const participant of session.participants.values()) this.#writeNetwork(participant);
    for (const [deviceId, device] of session.devices) {
      if (device.onlineSince !== undefined) {
        device.onlineMs += Math.max(0, endedAt - device.onlineSince);
        device.onlineSince = undefined;
      }
      this.#writeDevice(session.id, deviceId, device, endedAt);
    }
    this.#queue.enqueue('essential', 'session end', (s) => s.endSession(session.id, endedAt, reason));
    this.#options.onSessionEnded?.(session.id);
  }

  #sampleNetwork(peer: Peer, participant: LiveParticipant): void {
    if (peer.closed) return;
    const sample = this.#network(peer);
    if (!sample) return;
    const net = participant.net;
    net.samples++;
    net.bitrateInSum += sample.bitrateIn;
    net.bitrateOutSum += sample.bitrateOut;
    net.lossInMax = Math.max(net.lossInMax, sample.lossIn);
    net.lossOutMax = Math.max(net.lossOutMax, sample.lossOut);
    if (sample.rttMs !== undefined) {
      net.rttSum += sample.rttMs;
      net.rttCount++;
      net.rttMax = Math.max(net.rttMax, sample.rttMs);
    }
    net.dirty = true;
  }

  #writeNetwork(participant: LiveParticipant): void {
    if (!participant.net.dirty) return;
    participant.net.dirty = false;
    const summary = summarise(participant.net);
    this.#queue.enqueue('bulk', 'participant network', (s) => s.participantNetwork(participant.id, summary));
  }

  // ---- devices -------------------------------------------------------------------

  readonly #onStatus = (info: DeviceInfo & { siteId: string }): void => {
    // Only the info a device last announced in its current conference; a "moved away" notice keeps the old conference's.
    // An offline device is forgotten (it says hello again, with its info, when it is back): the map stays as small as the live devices.
    if (info.status === 'offline') this.#deviceInfo.delete(info.deviceId);
    else if (info.reason !== 'device moved to another conference') this.#deviceInfo.set(info.deviceId, info);
    const session = this.#sessions.get(info.conferenceId);
    if (!session) return;
    const online = info.status !== 'offline';
    // An offline notice (site gone, device moved away) adds no device that never took part.
    if (!online && !session.devices.has(info.deviceId)) return;
    const device = this.#device(session, info.deviceId, info);
    const now = Date.now();
    if (online && device.onlineSince === undefined) device.onlineSince = now;
    if (!online && device.onlineSince !== undefined) {
      device.onlineMs += Math.max(0, now - device.onlineSince);
      device.onlineSince = undefined;
    }
    device.channelsChanged = info.channels;
  };

  readonly #onReadings = (batch: DeviceStreamEvents['readings'][0]): void => {
    const session = this.#sessions.get(batch.conferenceId);
    if (!session) return; // nobody is in the conference: no consultation to record
    const info = this.#deviceInfo.get(batch.deviceId);
    const device = this.#device(session, batch.deviceId, info && info.conferenceId === batch.conferenceId ? info : { ...placeholderInfo(batch.deviceId, batch.conferenceId), siteId: batch.siteId });
    if (device.onlineSince === undefined) device.onlineSince = Date.now();
    device.readings += batch.readings.length;
    for (const gap of batch.gaps) {
      device.gaps++;
      device.missing += gap.to - gap.from + 1;
    }
    const numerics: NumericRow[] = [];
    for (const r of batch.readings) {
      device.lastReadingAt = Math.max(device.lastReadingAt ?? 0, r.t);
      if (r.kind === 'numeric') {
        const last = device.lastNumericAt.get(r.code);
        if (last === undefined && device.lastNumericAt.size >= MAX_CODES_PER_DEVICE) continue;
        if (last !== undefined && r.t >= last && r.t - last < this.#options.numericIntervalMs) continue;
        device.lastNumericAt.set(r.code, r.t);
        numerics.push({ sessionId: session.id, deviceId: batch.deviceId, code: r.code, unit: r.unit, t: r.t, value: r.value });
      } else if (r.kind === 'alarm') {
        this.#alarm(session, batch.deviceId, device, r);
      } else if (r.kind === 'waveform') {
        this.#waveform(session, batch.deviceId, device, r);
      }
    }
    if (numerics.length > 0) this.#queue.enqueue('bulk', 'numerics', (s) => s.addNumerics(numerics));
  };

  #device(session: LiveSession, deviceId: string, info: DeviceInfo & { siteId: string }): LiveDevice {
    let device = session.devices.get(deviceId);
    if (device) return device;
    device = {
      readings: 0,
      gaps: 0,
      missing: 0,
      lastReadingAt: null,
      onlineSince: undefined,
      onlineMs: 0,
      channelsChanged: undefined,
      lastNumericAt: new Map(),
      openAlarms: new Map(),
      waves: new Map(),
    };
    session.devices.set(deviceId, device);
    const row = {
      id: randomUUID(),
      sessionId: session.id,
      deviceId,
      siteId: info.siteId,
      type: info.type,
      model: info.model,
      protocol: info.protocol,
      channels: info.channels,
      firstSeenAt: Date.now(),
    };
    this.#queue.enqueue('essential', 'device', (s) => s.addDevice(row));
    return device;
  }

  #writeDevice(sessionId: string, deviceId: string, device: LiveDevice, now: number): void {
    if (device.onlineSince !== undefined) {
      device.onlineMs += Math.max(0, now - device.onlineSince);
      device.onlineSince = now;
    }
    if (device.readings === 0 && device.gaps === 0 && device.onlineMs === 0 && !device.channelsChanged) return;
    const progress = {
      readings: device.readings,
      gaps: device.gaps,
      missingReadings: device.missing,
      onlineMs: device.onlineMs,
      lastReadingAt: device.lastReadingAt,
      ...(device.channelsChanged ? { channels: device.channelsChanged } : {}),
    };
    device.readings = 0;
    device.gaps = 0;
    device.missing = 0;
    device.onlineMs = 0;
    device.channelsChanged = undefined;
    this.#queue.enqueue('bulk', 'device counters', (s) => s.deviceProgress(sessionId, deviceId, progress));
  }

  /** Start, continue and end of one alarm condition pair up by alarmId (the device's), else by code. */
  #alarm(session: LiveSession, deviceId: string, device: LiveDevice, r: AlarmBody & { seq: number }): void {
    const key = r.alarmId ?? r.code;
    const open = device.openAlarms.get(key);
    const ending = !r.active || r.phase === 'end';
    if (!ending && open === undefined) {
      if (device.openAlarms.size >= MAX_CODES_PER_DEVICE) return;
      const id = randomUUID();
      device.openAlarms.set(key, id);
      const row = { id, sessionId: session.id, deviceId, alarmKey: key, code: r.code, priority: r.priority, text: r.text, source: r.source ?? null, startedAt: r.t };
      this.#queue.enqueue('essential', 'alarm start', (s) => s.alarmStarted(row));
      // The waveforms at the alarm's start are the ones a reviewer wants: take strips from the next readings.
      for (const channel of device.waves.values()) channel.triggered = true;
    } else if (ending && open !== undefined) {
      device.openAlarms.delete(key);
      const endedAt = r.t;
      this.#queue.enqueue('essential', 'alarm end', (s) => s.alarmEnded(open, endedAt));
    }
  }

  #waveform(session: LiveSession, deviceId: string, device: LiveDevice, r: WaveformBody & { seq: number }): void {
    if (!(r.sampleRate > 0) || r.samples.length === 0) return;
    let channel = device.waves.get(r.code);
    if (!channel) {
      if (device.waves.size >= MAX_CODES_PER_DEVICE) return;
      device.waves.set(r.code, (channel = { strip: undefined, written: 0, lastStripAt: undefined, triggered: false }));
    }
    if (channel.written >= this.#options.maxWaveformWindowsPerChannel) return;
    const periodMs = 1000 / r.sampleRate;
    let strip = channel.strip;
    if (strip && (strip.sampleRate !== r.sampleRate || strip.unit !== r.unit || Math.abs(r.t - strip.nextT) > Math.max(STRIP_JOIN_TOLERANCE_MS, 2 * periodMs))) {
      strip = channel.strip = undefined; // a hole or a change: this strip cannot be one fixed window
    }
    if (!strip) {
      const due = channel.lastStripAt === undefined || channel.triggered || r.t - channel.lastStripAt >= this.#options.waveformEveryMs;
      if (!due) return;
      channel.triggered = false;
      channel.lastStripAt = r.t;
      strip = channel.strip = { t: r.t, sampleRate: r.sampleRate, unit: r.unit, samples: [], nextT: r.t };
    }
    const want = Math.min(MAX_STRIP_SAMPLES, Math.max(1, Math.round((this.#options.waveformWindowMs / 1000) * r.sampleRate)));
    for (const sample of r.samples) {
      if (strip.samples.length >= want) break;
      strip.samples.push(sample);
    }
    strip.nextT = r.t + r.samples.length * periodMs;
    if (strip.samples.length < want) return;
    channel.strip = undefined;
    channel.written++;
    const row = { sessionId: session.id, deviceId, code: r.code, unit: strip.unit, t: strip.t, sampleRate: strip.sampleRate, samples: strip.samples };
    this.#queue.enqueue('bulk', 'waveform strip', (s) => s.addWaveform(row));
  }
}

function emptyNetwork(): NetworkAccumulator {
  return { samples: 0, bitrateInSum: 0, bitrateOutSum: 0, lossInMax: 0, lossOutMax: 0, rttSum: 0, rttCount: 0, rttMax: 0, dirty: false };
}

function summarise(n: NetworkAccumulator): NetworkSummary {
  const some = n.samples > 0;
  return {
    samples: n.samples,
    bitrateInAvg: some ? Math.round(n.bitrateInSum / n.samples) : null,
    bitrateOutAvg: some ? Math.round(n.bitrateOutSum / n.samples) : null,
    lossInMax: some ? n.lossInMax : null,
    lossOutMax: some ? n.lossOutMax : null,
    rttAvgMs: n.rttCount > 0 ? Math.round((n.rttSum / n.rttCount) * 10) / 10 : null,
    rttMaxMs: n.rttCount > 0 ? n.rttMax : null,
  };
}

function placeholderInfo(deviceId: string, conferenceId: string): DeviceInfo {
  return { deviceId, conferenceId, type: 'other', model: '', protocol: '', status: 'online', channels: [] };
}

