// Conference recording (docs/RECORDING.md): a specialist starts it, every
// producer of the conference is written to its own file without transcoding
// (TrackRecorder), the conference's device events go beside them as JSON
// lines on the hub's clock, and the peers see a recordingState indicator at
// once. Owned by the Hub; closing it stops every recording cleanly.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Actor, AuditSink } from '../audit/events.js';
import { HoichanError, conflict, forbidden, limitExceeded, notFound } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logger.js';
import type { DeviceInfo } from '../devices/reading.js';
import type { Conference } from '../media/Conference.js';
import type { Role } from '../media/events.js';
import type { DeviceTap } from '../streams/PeerFanout.js';
import { currentProducerIds, openRecordingTap, watchNewProducers } from './mediaTap.js';
import { TrackRecorder } from './TrackRecorder.js';
import { manifestSchema, type RecordingActor, type RecordingEvents, type RecordingManifest, type RecordingState, type StopReason, type TrackSidecar } from './types.js';


/** A recording id is a UUID: it names a directory, so nothing else is accepted. */
export const RECORDING_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const log = createLogger('recording');
const MANIFEST = 'manifest.json';
const READINGS = 'readings.jsonl';
/** How often a running recording checks the disk floor. */
const DISK_CHECK_MS = 5000;

export interface RecordingConfig {
  dir: string;
  ffmpegPath: string;
  ffprobePath: string;
  maxDurationMinutes: number;
  minFreeDiskMB: number;
  maxTracksPerRecording: number;
  maxConcurrentRecordings: number;
}

/** The conference's device events, as the peers get them (DeviceStreams). */
export interface DeviceEventSource {
  tap(conferenceId: string, listener: DeviceTap): () => void;
  devicesOf(conferenceId: string): DeviceInfo[];
}

/** Who asks: the token's subject and role, the name peers see, and the address (for the audit log). */
export interface Requester {
  sub: string;
  role: Role;
  displayName: string;
  ip?: string;
}

export class RecordingManager extends EventEmitter<RecordingEvents> {
  readonly #config: RecordingConfig;
  readonly #dir: string;
  #devices: DeviceEventSource | undefined;
  readonly #audit: AuditSink;
  /** By conference id, from the moment start() is accepted. */
  readonly #active = new Map<string, Recording>();
  #closed = false;
  #retention: NodeJS.Timeout | undefined;

  constructor(config: RecordingConfig, devices: DeviceEventSource | undefined, audit: AuditSink = { record: () => undefined }) {
    super();
    this.#config = config;
    this.#dir = resolvePath(config.dir);
    this.#devices = devices;
    this.#audit = audit;
  }

  get dir(): string {
    return this.#dir;
  }

  /** The hub's device streams, once they exist: recordings started from then on write the readings file. */
  attachDevices(devices: DeviceEventSource): void {
    this.#devices = devices;
  }

  /** What a joining peer is told, and what recordingState carries. */
  stateOf(conferenceId: string): RecordingState {
    return this.#active.get(conferenceId)?.state ?? { active: false, recordingId: null, startedAt: null, by: null };
  }

  async start(conference: Conference, who: Requester): Promise<RecordingState> {
    const actor: Actor = { sub: who.sub, role: who.role, ...(who.ip ? { ip: who.ip } : {}) };
    try {
      if (who.role !== 'specialist') throw forbidden('only a specialist of the conference may start recording');
      if (this.#closed || conference.closed) throw conflict('the conference is closing');
      const running = this.#active.get(conference.id);
      if (running) throw conflict(`conference ${conference.id} is already being recorded (recording ${running.id})`);
      if (this.#active.size >= this.#config.maxConcurrentRecordings) {
        throw limitExceeded(`this hub records at most ${this.#config.maxConcurrentRecordings} conferences at once (recording.maxConcurrentRecordings)`);
      }
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      const free = await freeMB(this.#dir);
      if (free < this.#config.minFreeDiskMB) {
        throw new HoichanError('unavailable', `not enough disk space to record: ${free} MB free, recording.minFreeDiskMB is ${this.#config.minFreeDiskMB}`);
      }
      // Checked again after the await: a second request may have started one meanwhile.
      if (this.#active.has(conference.id)) throw conflict(`conference ${conference.id} is already being recorded`);
      if (conference.closed) throw conflict('the conference is closing');
      const recording = new Recording(conference, who, this.#config, this.#dir, this.#devices, this);
      this.#active.set(conference.id, recording);
      recording.begin();
      this.#audit.record({ type: 'recording.start', actor, conferenceId: conference.id, outcome: 'ok', target: { recordingId: recording.id } });
      this.emit('started', { recordingId: recording.id, conferenceId: conference.id, startedAt: recording.startedAt, by: recording.startedBy, dir: recording.dir });
      conference.broadcast('recordingState', recording.state);
      return recording.state;
    } catch (err) {
      const outcome = err instanceof HoichanError ? err.code : 'internal';
      // Forbidden refusals are recorded by the signaling layer as request.forbidden too; this names the action.
      this.#audit.record({ type: 'recording.start', actor, conferenceId: conference.id, outcome, target: {} });
      throw err;
    }
  }

  async stop(conferenceId: string, who: Requester): Promise<RecordingState> {
    if (who.role !== 'specialist') throw forbidden('only a specialist of the conference may stop recording');
    const recording = this.#active.get(conferenceId);
    if (!recording) throw notFound(`conference ${conferenceId} is not being recorded`);
    return this.#stop(recording, { sub: who.sub, role: who.role === 'specialist' ? 'specialist' : 'system' }, 'requested', who.ip);
  }

  /** Reads a recording's manifest from disk (any recording, running or not). */
  manifest(recordingId: string): RecordingManifest {
    if (!RECORDING_ID.test(recordingId)) throw notFound(`recording ${recordingId} not found`);
    let text: string;
    try {
      text = readFileSync(join(this.#dir, recordingId, MANIFEST), 'utf8');
    } catch {
      throw notFound(`recording ${recordingId} not found`);
    }
    const parsed = manifestSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`recording ${recordingId}: manifest does not match its schema`);
    return parsed.data;
  }

  /**
   * Retention (docs/RECORDING.md): deletes the folders of recordings that
   * stopped more than `retentionDays` ago (records.retentionDays, the same
   * horizon as the consultation records that point at them). Returns their ids.
   */
  purgeExpired(retentionDays: number, now = Date.now()): string[] {
    let ids: string[] = [];
    try {
      ids = readdirSync(this.#dir).filter((name) => RECORDING_ID.test(name));
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const id of ids) {
      let stoppedAt: number | null;
      try {
        stoppedAt = this.manifest(id).stoppedAt;
      } catch {
        continue; // no readable manifest: left for an operator
      }
      if (stoppedAt === null || now - stoppedAt < retentionDays * 86_400_000) continue;
      rmSync(join(this.#dir, id), { recursive: true, force: true });
      removed.push(id);
    }
    return removed;
  }

  /** Runs purgeExpired now and every 24 h until close(). */
  keepFor(retentionDays: number): void {
    const run = () => {
      const removed = this.purgeExpired(retentionDays);
      if (removed.length > 0) log.info({ removed: removed.length, retentionDays }, 'expired recordings deleted');
    };
    run();
    this.#retention = setInterval(run, 86_400_000);
    this.#retention.unref();
  }

  /** Stops every recording (hub shutdown): each file is finalised before this resolves. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#retention);
    await Promise.all([...this.#active.values()].map((r) => this.#stop(r, SYSTEM, 'shutdown').finalised));
  }

  /** @internal Recording calls this when it ends by itself (max duration, disk floor, conference closed). */
  stopFor(recording: Recording, reason: StopReason): void {
    void this.#stop(recording, SYSTEM, reason);
  }

  /** @internal */
  trackEvent(kind: 'trackStarted' | 'trackStopped', recording: Recording, sidecar: TrackSidecar): void {
    this.emit(kind, { recordingId: recording.id, conferenceId: recording.conference.id, sidecar });
  }

  /**
   * Ends a recording: the peers are told at once; the files are finalised
   * after (ffmpeg writes its trailer, normally well under a second, at most
   * ~10 s on a starved host). `finalised` resolves when they are, and
   * 'stopped' is emitted then.
   */
  #stop(recording: Recording, by: RecordingActor, reason: StopReason, ip?: string): Promise<RecordingState> & { finalised?: Promise<void> } {
    const state: RecordingState = { active: false, recordingId: recording.id, startedAt: null, by: null, reason };
    if (recording.stopping) return Object.assign(Promise.resolve(state), { finalised: recording.end(by, reason).then(() => undefined) });
    const ended = recording.end(by, reason);
    if (this.#active.get(recording.conference.id) === recording) this.#active.delete(recording.conference.id);
    if (!recording.conference.closed) recording.conference.broadcast('recordingState', state);
    const finalised = ended.then((tracks) => {
      this.#audit.record({ type: 'recording.stop', actor: { sub: by.sub, role: by.role, ...(ip ? { ip } : {}) }, conferenceId: recording.conference.id, outcome: 'ok', target: { recordingId: recording.id, reason, tracks } });
      this.emit('stopped', { recordingId: recording.id, conferenceId: recording.conference.id, stoppedAt: recording.stoppedAt ?? Date.now(), by, reason, tracks });
    });
    return Object.assign(Promise.resolve(state), { finalised });
  }
}

const SYSTEM: RecordingActor = { sub: 'hub', role: 'system' };

/** One recording of one conference: its folder, its tracks, its readings file and its bounds. */
class Recording {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  readonly startedBy: RecordingActor;
  readonly dir: string;
  stoppedAt: number | null = null;
  readonly #byName: string;
  readonly #config: RecordingConfig;
  readonly #devices: DeviceEventSource | undefined;
  readonly #manager: RecordingManager;
  readonly #log: Logger;
  readonly #tracks = new Map<string, TrackRecorder>();
  /** Producer ids being opened (counted against the track cap). */
  readonly #opening = new Set<string>();
  readonly #cleanups: Array<() => void> = [];
  #readings: WriteStream | undefined;
  #manifest: RecordingManifest;
  #ending: Promise<number> | undefined;

  constructor(
    readonly conference: Conference,
    who: Requester,
    config: RecordingConfig,
    root: string,
    devices: DeviceEventSource | undefined,
    manager: RecordingManager,
  ) {
    this.startedBy = { sub: who.sub, role: 'specialist' };
    this.#byName = who.displayName;
    this.#config = config;
    this.#devices = devices;
    this.#manager = manager;
    this.dir = join(root, this.id);
    this.#log = createLogger('recording', { conferenceId: conference.id, recordingId: this.id });
    this.#manifest = {
      version: 1,
      recordingId: this.id,
      conferenceId: conference.id,
      startedAt: this.startedAt,
      stoppedAt: null,
      startedBy: this.startedBy,
      stoppedBy: null,
      stopReason: null,
      tracks: [],
      readings: READINGS,
    };
  }

  get state(): RecordingState {
    return { active: true, recordingId: this.id, startedAt: this.startedAt, by: this.#byName };
  }

  get stopping(): boolean {
    return this.#ending !== undefined;
  }

  /** Synchronous up to the first file: the folder, the manifest, the readings file, the watchers and timers. */
  begin(): void {
    mkdirSync(this.dir, { mode: 0o700 });
    this.#writeManifest();
    this.#startReadings();
    const onClose = () => this.#manager.stopFor(this, 'conference-closed');
    this.conference.once('close', onClose);
    this.#cleanups.push(() => this.conference.off('close', onClose));
    this.#cleanups.push(watchNewProducers(this.conference, (producerId) => void this.#addTrack(producerId)));
    const maxTimer = setTimeout(() => {
      this.#log.info({ maxDurationMinutes: this.#config.maxDurationMinutes }, 'recording reached its maximum duration');
      this.#manager.stopFor(this, 'max-duration');
    }, this.#config.maxDurationMinutes * 60_000);
    const diskTimer = setInterval(() => {
      void freeMB(this.dir).then(
        (free) => {
          if (free >= this.#config.minFreeDiskMB || this.stopping) return;
          this.#log.warn({ freeMB: free, minFreeDiskMB: this.#config.minFreeDiskMB }, 'disk below the recording floor; stopping');
          this.#manager.stopFor(this, 'disk-floor');
        },
        () => undefined,
      );
    }, DISK_CHECK_MS);
    // A sweep for producers the primary router's observer does not see (those
    // on the conference's other routers, or published while a router was
    // replaced); #addTrack ignores those it has. Cheap: a list of ids.
    const sweep = setInterval(() => {
      for (const producerId of currentProducerIds(this.conference)) void this.#addTrack(producerId);
    }, 500);
    this.#cleanups.push(() => {
      clearTimeout(maxTimer);
      clearInterval(diskTimer);
      clearInterval(sweep);
    });
    for (const producerId of currentProducerIds(this.conference)) void this.#addTrack(producerId);
    this.#log.info({ producers: this.#opening.size }, 'recording started');
  }

  async #addTrack(producerId: string): Promise<void> {
    if (this.stopping || this.#tracks.has(producerId) || this.#opening.has(producerId)) return;
    if (this.#tracks.size + this.#opening.size >= this.#config.maxTracksPerRecording) {
      this.#log.warn({ producerId, maxTracksPerRecording: this.#config.maxTracksPerRecording }, 'track not recorded: recording.maxTracksPerRecording reached');
      return;
    }
    this.#opening.add(producerId);
    try {
      const tap = await openRecordingTap(this.conference, producerId);
      if (this.stopping) {
        tap.transport.close();
        return;
      }
      const recorder = await TrackRecorder.start(tap, { recordingId: this.id, dir: this.dir, ffmpegPath: this.#config.ffmpegPath, ffprobePath: this.#config.ffprobePath, log: this.#log });
      if (!recorder) return;
      this.#tracks.set(producerId, recorder);
      const sidecar = recorder.sidecar;
      this.#manifest.tracks.push({ producerId, peerId: sidecar.peerId, kind: sidecar.kind, source: sidecar.source, file: sidecar.file, sidecar: `${producerId}.json`, contentType: recorder.format.contentType });
      this.#writeManifest();
      // The first packet may have gone out while start() resolved.
      if (sidecar.firstPacket) this.#manager.trackEvent('trackStarted', this, sidecar);
      else recorder.once('started', (s) => this.#manager.trackEvent('trackStarted', this, s));
      recorder.once('closed', (s) => {
        this.#log.info({ producerId, state: s.state, bytes: s.bytes }, 'track closed');
        this.#manager.trackEvent('trackStopped', this, s);
      });
      if (this.stopping) await recorder.stop();
    } catch (err) {
      // The producer closed meanwhile, or ffmpeg could not start: this track only.
      this.#log.warn({ producerId, err: (err as Error).message }, 'track not recorded');
    } finally {
      this.#opening.delete(producerId);
    }
  }

  #startReadings(): void {
    const devices = this.#devices;
    if (!devices) return;
    const stream = createWriteStream(join(this.dir, READINGS), { flags: 'a', mode: 0o600 });
    stream.on('error', (err) => this.#log.error({ err: err.message }, 'cannot write the readings file'));
    this.#readings = stream;
    const write = (line: object) => {
      if (!stream.writableEnded) stream.write(`${JSON.stringify(line)}\n`);
    };
    // What the devices are at the start, so the file stands alone.
    for (const device of devices.devicesOf(this.conference.id)) write({ hubMs: Date.now(), event: 'deviceStatus', device });
    this.#cleanups.push(
      devices.tap(this.conference.id, (event, data) => {
        const hubMs = Date.now();
        if (event === 'deviceStatus') write({ hubMs, event, device: data });
        else write({ hubMs, event, ...data });
      }),
    );
  }

  /** Stops the tracks (each file finalised), closes the readings file, writes the final manifest. Returns the track count. */
  end(by: RecordingActor, reason: StopReason): Promise<number> {
    this.#ending ??= (async () => {
      for (const cleanup of this.#cleanups.splice(0)) cleanup();
      this.stoppedAt = Date.now();
      // Tracks still being opened see `stopping` and stop themselves.
      await Promise.all([...this.#tracks.values()].map((t) => t.stop()));
      while (this.#opening.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      await Promise.all([...this.#tracks.values()].map((t) => t.stop()));
      const readings = this.#readings;
      if (readings) await new Promise<void>((resolve) => readings.end(() => resolve()));
      Object.assign(this.#manifest, { stoppedAt: this.stoppedAt, stoppedBy: by, stopReason: reason });
      this.#writeManifest();
      this.#log.info({ reason, tracks: this.#tracks.size }, 'recording stopped');
      return this.#tracks.size;
    })();
    return this.#ending;
  }

  #writeManifest(): void {
    const path = join(this.dir, MANIFEST);
    writeFileSync(`${path}.tmp`, JSON.stringify(this.#manifest, null, 1), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }
}

async function freeMB(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return Math.floor((stats.bavail * stats.bsize) / (1024 * 1024));
}
