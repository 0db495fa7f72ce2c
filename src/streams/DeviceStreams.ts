// The hub side of device flow: per device the stored watermark, its owning
// site connection and status; accepts the uplink's batches (deduplicated by
// (deviceId, seq), contiguous, stored before they are emitted and acked),
// fans them out to the device's conference, and answers `join` with the
// conference's devices and a replay. docs/PROTOCOL.md describes the rules.

import { z } from 'zod';
import { HoichanError, conflict, forbidden, notFound } from '../common/errors.js';
import type { DeviceHistoryStore } from '../cluster/deviceHistory.js';
import type { ChannelInfo, DeviceInfo, DeviceStatus, DeviceType, Reading } from '../devices/reading.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { PeerNotify } from '../media/events.js';
import type { DeviceDirectory } from '../signaling/SignalingServer.js';
import { deviceMetrics } from '../telemetry/deviceMetrics.js';
import { createLogger } from '../telemetry/logger.js';
import type { DeviceStreamStats } from '../telemetry/opsReport.js';
import { PeerFanout } from './PeerFanout.js';
import { deviceIdSchema, type AlarmNotice, type HelloDevice, type HelloResult, type ParsedBatch, type StatusMessage } from './protocol.js';

const log = createLogger('device-streams');

export interface DeviceStreamsOptions {
  /** A reading reaching the hub this long after the agent received it is marked late. Default 5000. */
  lateAfterMs?: number;
  /** Uplink lag above which an online device is shown degraded (cleared below half of it). Default 10000. */
  degradedLagMs?: number;
  /** Waveform window of the late-joiner snapshot. Default 60000. */
  replayWindowMs?: number;
  /** Most readings a resuming peer is sent per device. Default 20000. */
  maxResumeReadings?: number;
}

/** One authenticated agent connection, as the streams service knows it. */
export interface AgentConnection {
  readonly id: string;
  readonly siteId: string;
  /** What the token grants: a conference id or '*'. */
  readonly conf: string;
  /** hub clock - agent clock, measured by the agent at connect. */
  clockOffsetMs: number;
  rttMs: number;
  /** Per device, the end of the last batch accepted on this connection (seqs must rise). */
  readonly lastTo: Map<string, number>;
}

interface DeviceState {
  deviceId: string;
  siteId: string;
  conferenceId: string;
  type: DeviceType;
  model: string;
  protocol: string;
  channels: ChannelInfo[];
  /** Status the agent reports for the device itself. */
  agentStatus: DeviceStatus;
  agentReason?: string;
  owner?: AgentConnection;
  stored: number;
  lagging: boolean;
  lagMs: number;
  noticedAlarmSeq: number;
  lastEmitted?: string;
  /** Serialises this device's hellos and batches. */
  queue: Promise<unknown>;
  rate: RateWindow;
  received: number;
  duplicates: number;
}

interface SiteState {
  journalPending: number;
  journalBytes: number;
  journalByDevice: Record<string, number>;
  parseErrors: Record<string, number>;
}


const resumeSchema = z.record(deviceIdSchema, z.number().int().min(0)).optional();

export class DeviceStreams implements DeviceDirectory {
  readonly #store: DeviceHistoryStore;
  readonly #fanout: PeerFanout;
  readonly #devices = new Map<string, DeviceState>();
  readonly #sites = new Map<string, SiteState>();
  readonly #lateAfterMs: number;
  readonly #degradedLagMs: number;
  readonly #replayWindowMs: number;
  readonly #maxResume: number;

  constructor(store: DeviceHistoryStore, conferences: ConferenceManager, options: DeviceStreamsOptions = {}) {
    this.#store = store;
    this.#fanout = new PeerFanout(conferences);
    this.#lateAfterMs = options.lateAfterMs ?? 5000;
    this.#degradedLagMs = options.degradedLagMs ?? 10_000;
    this.#replayWindowMs = options.replayWindowMs ?? 60_000;
    this.#maxResume = options.maxResumeReadings ?? 20_000;
  }

  get storeKind(): string {
    return this.#store.kind;
  }

  // ---- DeviceDirectory ---------------------------------------------------

  devicesOf(conferenceId: string): DeviceInfo[] {
    return [...this.#devices.values()].filter((d) => d.conferenceId === conferenceId).map((d) => this.#info(d));
  }

  replay(conferenceId: string, peerId: string, notify: PeerNotify, resume: unknown): void {
    const parsed = resumeSchema.safeParse(resume);
    const seqs = parsed.success ? parsed.data : undefined;
    const devices = [...this.#devices.values()]
      .filter((d) => d.conferenceId === conferenceId)
      .map((d) => ({ deviceId: d.deviceId, upTo: d.stored, ...(seqs?.[d.deviceId] !== undefined ? { resumeAfter: seqs[d.deviceId] } : {}) }));
    this.#fanout.join(
      conferenceId,
      peerId,
      notify,
      devices,
      (d) =>
        d.resumeAfter !== undefined
          ? this.#store.range(d.deviceId, d.resumeAfter, d.upTo, this.#maxResume)
          : this.#store.recent(d.deviceId, this.#replayWindowMs, d.upTo),
      (err) => log.warn({ peerId, err: err.message }, 'replay failed'),
    );
  }

  // ---- uplink ------------------------------------------------------------

  /** Takes an agent's devices; answers per device where to resume, or why it is refused. */
  async hello(conn: AgentConnection, devices: HelloDevice[]): Promise<HelloResult> {
    const result: HelloResult = { devices: [], rejected: [] };
    for (const d of devices) {
      try {
        if (conn.conf !== '*' && conn.conf !== d.conferenceId) {
          throw forbidden(`device ${d.deviceId} is attached to conference ${d.conferenceId}, which this token does not grant`);
        }
        const owner = await this.#store.claim(d.deviceId, conn.siteId);
        if (owner !== conn.siteId) throw forbidden(`device ${d.deviceId} belongs to another site`);
        const acked = await this.#serially(d.deviceId, conn.siteId, d, async (state) => {
          if (state.stored === 0) state.stored = await this.#store.watermark(d.deviceId);
          if (d.lastSeq < state.stored) {
            // The agent's journal was wiped: its seqs restart, and the old ones would all look like duplicates.
            log.warn({ deviceId: d.deviceId, siteId: conn.siteId, hubStored: state.stored, agentLastSeq: d.lastSeq }, 'device seqs restarted at the site; resetting its stream');
            await this.#store.resetWatermark(d.deviceId, d.acked);
            state.stored = d.acked;
          } else if (d.acked > state.stored) {
            // This hub lost what the agent knows it had stored (in-memory history after a restart).
            await this.#store.append(d.deviceId, [], d.acked);
            state.stored = d.acked;
          }
          Object.assign(state, { conferenceId: d.conferenceId, type: d.type, model: d.model, protocol: d.protocol, channels: d.channels });
          state.agentStatus = d.status;
          state.agentReason = d.reason;
          state.owner = conn;
          state.lagging = false;
          conn.lastTo.delete(d.deviceId);
          return state.stored;
        });
        result.devices.push({ deviceId: d.deviceId, acked });
        this.#announce(this.#devices.get(d.deviceId)!);
      } catch (err) {
        if (!(err instanceof HoichanError)) throw err;
        log.warn({ siteId: conn.siteId, deviceId: d.deviceId, code: err.code, why: err.message }, 'device refused');
        result.rejected.push({ deviceId: d.deviceId, code: err.code, message: err.message });
      }
    }
    return result;
  }

  /** Stores, emits and acks one batch; returns the device's watermark. Nothing of a refused batch is kept. */
  async batch(conn: AgentConnection, batch: ParsedBatch, receivedAt: number): Promise<number> {
    const state = this.#owned(conn, batch.deviceId);
    return this.#queued(state, async () => {
      const previous = conn.lastTo.get(batch.deviceId);
      if (previous !== undefined && batch.from <= previous) {
        throw new HoichanError('bad_request', `seq goes backwards: batch ${batch.from}..${batch.to} after one that ended at ${previous} on this connection`);
      }
      if (state.owner !== conn) throw forbidden(`device ${batch.deviceId} was taken over by a newer connection of its site`);
      if (batch.from > state.stored + 1) {
        throw conflict(`seq gap: the hub has ${batch.deviceId} up to ${state.stored}, the batch starts at ${batch.from}; resend from ${state.stored + 1}`);
      }
      conn.lastTo.set(batch.deviceId, batch.to);
      if (batch.to <= state.stored) {
        state.duplicates += batch.readings.length;
        return state.stored;
      }
      const fresh: Reading[] = [];
      for (const r of batch.readings) {
        if (r.seq <= state.stored) {
          state.duplicates++;
          continue;
        }
        const reading = r as Reading;
        const lagMs = receivedAt - (reading.rt + conn.clockOffsetMs);
        if (lagMs > this.#lateAfterMs) reading.late = true;
        deviceMetrics.uplinkLag.observe(Math.max(0, lagMs) / 1000);
        fresh.push(reading);
      }
      const gaps = batch.gaps.filter((g) => g.to > state.stored).map((g) => ({ ...g, from: Math.max(g.from, state.stored + 1) }));
      await this.#store.append(state.deviceId, fresh, batch.to);
      state.stored = batch.to;

      const labels = { protocol: state.protocol, device_type: state.type };
      deviceMetrics.readingsReceived.inc(labels, fresh.length);
      state.received += fresh.length;
      state.rate.add(fresh.length);
      if (fresh.length > 0 || gaps.length > 0) {
        this.#fanout.readings(state.conferenceId, { deviceId: state.deviceId, readings: fresh, ...(gaps.length > 0 ? { gaps } : {}) });
        deviceMetrics.readingsDelivered.inc(labels, fresh.length);
        deviceMetrics.fanout.observe((Date.now() - receivedAt) / 1000);
      }
      const newest = fresh[fresh.length - 1];
      if (newest) this.#updateLag(state, receivedAt - (newest.rt + conn.clockOffsetMs));
      return state.stored;
    });
  }

  /** An alarm ahead of its device's backlog: shown now, delivered again in seq order later. */
  alarm(conn: AgentConnection, notice: AlarmNotice): void {
    const state = this.#owned(conn, notice.deviceId);
    if (notice.reading.seq <= Math.max(state.stored, state.noticedAlarmSeq)) return;
    state.noticedAlarmSeq = notice.reading.seq;
    this.#fanout.alarm(state.conferenceId, state.deviceId, notice.reading as Reading);
  }

  status(conn: AgentConnection, message: StatusMessage): void {
    const site = this.#site(conn.siteId);
    if (message.journal) {
      site.journalPending = message.journal.pending;
      site.journalBytes = message.journal.bytes;
      site.journalByDevice = message.journal.devices;
      deviceMetrics.journalDepth.set({ site: conn.siteId }, message.journal.pending);
    }
    for (const [protocol, total] of Object.entries(message.parseErrors ?? {})) {
      // Totals since the agent started: count what is new (a restarted agent starts again from 0).
      const before = site.parseErrors[protocol] ?? 0;
      const delta = total >= before ? total - before : total;
      if (delta > 0) deviceMetrics.parseErrors.inc({ protocol }, delta);
      site.parseErrors[protocol] = total;
    }
    for (const d of message.devices) {
      const state = this.#devices.get(d.deviceId);
      if (!state || state.owner !== conn) continue; // not this connection's device: ignored, as in hello
      state.agentStatus = d.status;
      state.agentReason = d.reason;
      state.channels = d.channels;
      this.#announce(state);
    }
  }

  /** The agent's connection is gone: its devices go offline until it is back. */
  disconnected(conn: AgentConnection): void {
    for (const state of this.#devices.values()) {
      if (state.owner !== conn) continue;
      state.owner = undefined;
      this.#announce(state);
    }
  }

  /** Per device: flow, lag, status, and the journal depth its site reported. For the operations API. */
  stats(): DeviceStreamStats[] {
    return [...this.#devices.values()].map((d) => {
      const info = this.#info(d);
      const site = this.#sites.get(d.siteId);
      return {
        deviceId: d.deviceId,
        siteId: d.siteId,
        conferenceId: d.conferenceId,
        protocol: d.protocol,
        status: info.status,
        ...(info.reason !== undefined ? { reason: info.reason } : {}),
        stored: d.stored,
        readingsPerSecond: d.rate.perSecond(),
        received: d.received,
        duplicatesDropped: d.duplicates,
        uplinkLagMs: Math.round(d.lagMs),
        siteJournalDepth: site?.journalPending ?? 0,
        deviceJournalDepth: site?.journalByDevice[d.deviceId] ?? 0,
      };
    });
  }

  async close(): Promise<void> {
    this.#fanout.close();
    await this.#store.close();
  }

  // ---- internals ---------------------------------------------------------

  #owned(conn: AgentConnection, deviceId: string): DeviceState {
    const state = this.#devices.get(deviceId);
    if (!state) throw notFound(`device ${deviceId} is unknown; announce it in hello first`);
    if (state.siteId !== conn.siteId) throw forbidden(`device ${deviceId} belongs to another site`);
    if (state.owner !== conn) throw forbidden(`device ${deviceId} was not announced on this connection (or a newer one took it over)`);
    return state;
  }

  async #serially<T>(deviceId: string, siteId: string, d: HelloDevice, fn: (state: DeviceState) => Promise<T>): Promise<T> {
    let state = this.#devices.get(deviceId);
    if (!state) {
      state = {
        deviceId,
        siteId,
        conferenceId: d.conferenceId,
        type: d.type,
        model: d.model,
        protocol: d.protocol,
        channels: d.channels,
        agentStatus: d.status,
        stored: 0,
        lagging: false,
        lagMs: 0,
        noticedAlarmSeq: 0,
        queue: Promise.resolve(),
        rate: new RateWindow(),
        received: 0,
        duplicates: 0,
      };
      this.#devices.set(deviceId, state);
    }
    const s = state;
    return this.#queued(s, () => fn(s));
  }

  #queued<T>(state: DeviceState, fn: () => Promise<T>): Promise<T> {
    const run = state.queue.then(fn, fn);
    state.queue = run.catch(() => undefined);
    return run;
  }

  #updateLag(state: DeviceState, lagMs: number): void {
    state.lagMs = lagMs;
    const lagging = state.lagging ? lagMs > this.#degradedLagMs / 2 : lagMs > this.#degradedLagMs;
    if (lagging === state.lagging) return;
    state.lagging = lagging;
    this.#announce(state);
  }

  #info(d: DeviceState): DeviceInfo {
    let status = d.agentStatus;
    let reason = d.agentReason;
    if (!d.owner) {
      status = 'offline';
      reason = 'site agent disconnected';
    } else if (status === 'online' && d.lagging) {
      status = 'degraded';
      reason = 'uplink lag: delivering readings queued during an outage';
    }
    return {
      deviceId: d.deviceId,
      conferenceId: d.conferenceId,
      type: d.type,
      model: d.model,
      protocol: d.protocol,
      status,
      ...(reason !== undefined ? { reason } : {}),
      channels: d.channels,
    };
  }

  /** Emits deviceStatus when what peers see changed. */
  #announce(state: DeviceState): void {
    const info = this.#info(state);
    const key = JSON.stringify(info);
    if (key === state.lastEmitted) return;
    state.lastEmitted = key;
    this.#fanout.status(info);
  }

  #site(siteId: string): SiteState {
    let site = this.#sites.get(siteId);
    if (!site) this.#sites.set(siteId, (site = { journalPending: 0, journalBytes: 0, journalByDevice: {}, parseErrors: {} }));
    return site;
  }
}

/** Readings per second over the last 10 s, in 1 s buckets. */
class RateWindow {
  readonly #buckets = new Array<number>(10).fill(0);
  #second = Math.floor(Date.now() / 1000);

  add(n: number): void {
    this.#advance();
    this.#buckets[this.#second % 10]! += n;
  }

  perSecond(): number {
    this.#advance();
    return this.#buckets.reduce((a, b) => a + b, 0) / 10;
  }

  #advance(): void {
    const now = Math.floor(Date.now() / 1000);
    for (let s = this.#second + 1; s <= Math.min(now, this.#second + 10); s++) this.#buckets[s % 10] = 0;
    this.#second = Math.max(this.#second, now);
  }
}
