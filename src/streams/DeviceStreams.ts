// The hub side of device flow: per device the stored watermark, its owning
// site connection, its session (its stint in one conference) and status;
// accepts the uplink's batches (deduplicated by (deviceId, seq), contiguous,
// acked only once stored), fans them out to the device's conference, and
// answers `join` with the conference's devices and a bounded replay of their
// current sessions. docs/PROTOCOL.md describes the rules. While the history
// store (Redis) is away, readings still go out live to this hub's peers from a
// bounded buffer (UnstoredReadings) and are stored, then acked, when it returns.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { grantRefuses, type UplinkGrant } from '../auth/index.js';
import { z } from 'zod';
import { HoichanError, conflict, forbidden, notFound } from '../common/errors.js';
import { readingBytes, type DeviceHistoryStore, type DeviceSession } from './history/deviceHistory.js';
import type { ChannelInfo, DeviceInfo, DeviceStatus, DeviceType, Reading } from '../devices/reading.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { PeerNotify } from '../media/events.js';
import type { DeviceDirectory } from '../signaling/SignalingServer.js';
import { DEVICE_PROTOCOLS } from '../devices/siteConfig.js';
import { deviceMetrics } from '../telemetry/deviceMetrics.js';
import { createLogger } from '../common/logger.js';
import type { DeviceStreamStats } from '../contract/ops.js';
import { PeerFanout, type DeviceTap, type PeerBacklog, type PeerBroadcast } from './PeerFanout.js';
import { RemoteDevices, type DeviceClusterLink, type RemoteDeviceState } from './RemoteDevices.js';
import { UnstoredBudget, UnstoredReadings, type UnstoredBatch } from './UnstoredReadings.js';
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
  /** Estimated bytes (readingBytes) of history one peer's join replay may carry, all devices together. Default 8 MiB. */
  maxReplayBytes?: number;
  /** Devices one site may have announced (online or gone for less than deviceTtlMs). Default 32. */
  maxDevicesPerSite?: number;
  /** A device whose site connection has been gone this long is forgotten (no longer listed on join). Default 1 h. */
  deviceTtlMs?: number;
  /** History budget of one device session, estimated bytes. Default 16 MiB. */
  historyBytesPerDevice?: number;
  /** History budget of all of one site's devices together, shared evenly. Default 64 MiB. */
  historyBytesPerSite?: number;
  /** A peer with more than this many bytes queued on its socket gets no waveforms until it drains (no numerics past twice it). Default 1 MiB. */
  maxPeerBacklogBytes?: number;
  /** Bytes queued towards a peer; without it, no peer is ever treated as slow. */
  peerBacklog?: PeerBacklog;
  /** Sends one event to several peers in one go (the hub: one socket.io emit to their rooms). */
  peerBroadcast?: PeerBroadcast;
  /** Estimated bytes of readings one device may keep while the history store is unreachable. Default 8 MiB. */
  unstoredBytesPerDevice?: number;
  /** The same, all devices of this hub together. Default 256 MiB. */
  unstoredBytes?: number;
}

/** Protocols a site's parseErrors may name as a metric label; anything else is counted as 'other'. */
const KNOWN_PROTOCOLS: ReadonlySet<string> = new Set(DEVICE_PROTOCOLS);

/** One authenticated agent connection, as the streams service knows it. */
export interface AgentConnection {
  readonly id: string;
  readonly siteId: string;
  /** What the agent token grants: explicit conferences (and maybe devices), never '*'. */
  readonly grant: UplinkGrant;
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
  /** When its owning connection went away (the device is forgotten deviceTtlMs later). */
  offlineSince?: number;
  stored: number;
  /**
   * Highest contiguous seq this hub accepted and sent its peers (>= stored).
   * Above `stored` while the history store is away: those readings went out
   * live but are not acked yet.
   */
  held: number;
  /** Accepted, delivered, not yet stored: (stored, unstored.through] in seq order. */
  unstored: UnstoredReadings;
  /** The buffer filled up during this outage (warned once; the agent resends what it could not keep). */
  unstoredFull: boolean;
  /** The device's stint in its current conference: only readings from session.startSeq on are stored or sent. */
  session?: DeviceSession;
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
  journalByDevice: Record<string, number>;
  parseErrors: Record<string, number>;
}


const MiB = 1024 * 1024;

/** What the streams service tells listeners inside the hub (the consultation records); after the peers were sent it. */
export interface DeviceStreamEvents {
  /** Readings stored and fanned out to the device's conference, and gaps the site announced (seq ranges it lost). */
  readings: [{ deviceId: string; siteId: string; conferenceId: string; readings: readonly Reading[]; gaps: readonly { from: number; to: number }[] }];
  /** What peers were told of a device (online, degraded, offline, moved away), with the site it belongs to. */
  status: [DeviceInfo & { siteId: string }];
}

const resumeSchema = z.record(deviceIdSchema, z.number().int().min(0)).optional();

export class DeviceStreams implements DeviceDirectory {
  /** Readings and status changes, for in-hub listeners (src/records). */
  readonly events = new EventEmitter<DeviceStreamEvents>();
  readonly #store: DeviceHistoryStore;
  readonly #fanout: PeerFanout;
  readonly #devices = new Map<string, DeviceState>();
  readonly #sites = new Map<string, SiteState>();
  readonly #lateAfterMs: number;
  readonly #degradedLagMs: number;
  readonly #replayWindowMs: number;
  readonly #maxResume: number;
  readonly #maxReplayBytes: number;
  readonly #maxDevicesPerSite: number;
  readonly #deviceTtlMs: number;
  readonly #historyBytesPerDevice: number;
  readonly #historyBytesPerSite: number;
  readonly #sweep: NodeJS.Timeout;
  readonly #unstoredBudget: UnstoredBudget;
  /** Stores what an outage left unstored once the store is back, for devices that send nothing new meanwhile. */
  readonly #flushTimer: NodeJS.Timeout;
  /** Devices of other hubs of a cluster streaming into conferences here (src/cluster sets both). */
  readonly remote: RemoteDevices;
  cluster: DeviceClusterLink | undefined;

  constructor(store: DeviceHistoryStore, conferences: ConferenceManager, options: DeviceStreamsOptions = {}) {
    this.#store = store;
    this.#fanout = new PeerFanout(conferences, {
      maxPeerBacklogBytes: options.maxPeerBacklogBytes ?? MiB,
      ...(options.peerBacklog ? { backlog: options.peerBacklog } : {}),
      ...(options.peerBroadcast ? { broadcast: options.peerBroadcast } : {}),
    });
    this.#lateAfterMs = options.lateAfterMs ?? 5000;
    this.#degradedLagMs = options.degradedLagMs ?? 10_000;
    this.#replayWindowMs = options.replayWindowMs ?? 60_000;
    this.#maxResume = options.maxResumeReadings ?? 20_000;
    this.#maxReplayBytes = options.maxReplayBytes ?? 8 * MiB;
    this.#maxDevicesPerSite = options.maxDevicesPerSite ?? 32;
    this.#deviceTtlMs = options.deviceTtlMs ?? 3600_000;
    this.#historyBytesPerDevice = options.historyBytesPerDevice ?? 16 * MiB;
    this.#historyBytesPerSite = options.historyBytesPerSite ?? 64 * MiB;
    this.remote = new RemoteDevices(store, this.#fanout, { maxFillReadings: this.#maxResume, maxFillBytes: this.#maxReplayBytes, deviceTtlMs: this.#deviceTtlMs });
    this.#sweep = setInterval(() => this.#forgetGone(), Math.min(30_000, Math.max(100, this.#deviceTtlMs / 4)));
    this.#sweep.unref();
    this.#unstoredBudget = new UnstoredBudget(options.unstoredBytesPerDevice ?? 8 * MiB, options.unstoredBytes ?? 256 * MiB);
    this.#flushTimer = setInterval(() => {
      if (!this.#store.reachable) return;
      for (const state of this.#devices.values()) if (!state.unstored.empty) void this.#queued(state, () => this.#flush(state));
    }, 1000);
    this.#flushTimer.unref();
  }

  get storeKind(): string {
    return this.#store.kind;
  }

  // ---- DeviceDirectory ---------------------------------------------------

  /** Hook for the recorder: a conference's device events as its peers get them; returns the unsubscribe. */
  tap(conferenceId: string, listener: DeviceTap): () => void {
    return this.#fanout.tap(conferenceId, listener);
  }

  devicesOf(conferenceId: string): DeviceInfo[] {
    const { local, remote } = this.#split(conferenceId);
    return [...local.map((d) => this.#info(d)), ...remote.map((d) => d.info)];
  }

  /**
   * A conference's devices: this hub's, and other hubs' (cluster). A device
   * whose agent is connected here is this hub's; one whose agent left here
   * for another hub is that hub's.
   */
  #split(conferenceId: string): { local: DeviceState[]; remote: ReturnType<RemoteDevices['listed']> } {
    const local = this.#listed(conferenceId).filter((d) => d.owner || !this.remote.has(d.deviceId));
    const remote = this.remote.listed(conferenceId).filter((r) => !local.some((d) => d.deviceId === r.info.deviceId));
    return { local, remote };
  }

  /** Another hub's device status or batch (src/cluster); ignored for a device whose agent is connected here. */
  remoteStatus(hubId: string, state: RemoteDeviceState): void {
    if (!this.#devices.get(state.info.deviceId)?.owner) this.remote.status(hubId, state);
  }

  /** What the shared history has stored of a device (its watermark): where a hub that learns of a remote device starts. */
  storedWatermark(deviceId: string): Promise<number> {
    return this.#store.watermark(deviceId);
  }

  remoteReadings(hubId: string, event: Parameters<RemoteDevices['readings']>[1]): void {
    if (!this.#devices.get(event.deviceId)?.owner) this.remote.readings(hubId, event);
  }

  remoteAlarm(conferenceId: string, deviceId: string, reading: Reading): void {
    if (!this.#devices.get(deviceId)?.owner) this.remote.alarm(conferenceId, deviceId, reading);
  }

  /** This hub's devices whose agent is connected here, for the cluster's snapshots. */
  ownedDevices(): RemoteDeviceState[] {
    return [...this.#devices.values()].filter((d) => d.owner).map((d) => this.#clusterState(d));
  }

  #clusterState(d: DeviceState): RemoteDeviceState {
    return { info: this.#info(d), session: d.session ?? null, stored: d.stored };
  }

  away(conferenceId: string, peerId: string): void {
    this.#fanout.away(conferenceId, peerId);
  }

  replay(conferenceId: string, peerId: string, notify: PeerNotify, resume: unknown): void {
    const parsed = resumeSchema.safeParse(resume);
    const seqs = parsed.success ? parsed.data : undefined;
    const { local, remote } = this.#split(conferenceId);
    const listed = [
      ...local.filter((d) => d.session !== undefined).map((d) => ({ deviceId: d.deviceId, session: d.session!, upTo: d.stored })),
      // Another hub's devices: the history is shared, so they replay the same way.
      ...remote.flatMap((r) => (r.session ? [{ deviceId: r.info.deviceId, session: r.session, upTo: r.upTo }] : [])),
    ];
    // One budget for the whole join, shared evenly: a conference's devices together cannot make a join reply big.
    const budget = Math.floor(this.#maxReplayBytes / Math.max(1, listed.length));
    const devices = listed.map((d) => ({
      ...d,
      ...(seqs?.[d.deviceId] !== undefined ? { resumeAfter: seqs[d.deviceId] } : {}),
    }));
    this.#fanout.join(
      conferenceId,
      peerId,
      notify,
      devices,
      (d) => {
        // While the store is away a replay cannot load: failing at once keeps the joiner's live readings from waiting on Redis retries.
        if (!this.#store.reachable) return Promise.reject(new Error('the device history (Redis) is unreachable; no replay'));
        // Only the device's current session, which is this conference's: a seq the peer names from before
        // it (another conference's, or made up) resumes from the session's start, never earlier.
        return d.resumeAfter !== undefined
          ? this.#store.range(d.deviceId, d.session.id, Math.max(d.resumeAfter, d.session.startSeq - 1), d.upTo, this.#maxResume, budget)
          : this.#store.recent(d.deviceId, d.session.id, this.#replayWindowMs, d.upTo, budget);
      },
      (err) => log.warn({ peerId, err: err.message }, 'replay failed'),
    );
  }

  // ---- uplink ------------------------------------------------------------

  /** Takes an agent's devices; answers per device where to resume, or why it is refused. */
  async hello(conn: AgentConnection, devices: HelloDevice[]): Promise<HelloResult> {
    const result: HelloResult = { devices: [], rejected: [] };
    const announced = new Set(devices.map((d) => d.deviceId));
    for (const d of devices) {
      try {
        const refused = grantRefuses(conn.grant, d.deviceId, d.conferenceId);
        if (refused) throw forbidden(refused);
        if (!this.#store.reachable) {
          // Without the store this hub can only resume a device it streams already, for the site it knows owns it.
          const known = this.#devices.get(d.deviceId);
          if (!known?.session || known.siteId !== conn.siteId) throw unreachable(`this hub has no record of ${d.deviceId} to resume it from`);
        } else {
          const owner = await this.#store.claim(d.deviceId, conn.siteId);
          if (owner !== conn.siteId) throw forbidden(`device ${d.deviceId} belongs to another site`);
        }
        const { state, result: acked } = await this.#serially(d.deviceId, conn.siteId, d, announced, async (state) => {
          if (!this.#store.reachable) return this.#resumeUnstored(state, d, conn);
          await this.#flush(state);
          // The buffer continues the watermark this hub had; with the store's own watermark it might not.
          if (!state.unstored.empty) throw unreachable(`readings of ${d.deviceId} it delivered are not stored yet`);
          // The store is the truth (it may have expired the device, or another hub may have written it).
          const record = await this.#store.record(d.deviceId);
          state.stored = record.watermark;
          state.session = record.session;
          let restarted = false;
          if (d.lastSeq < state.stored) {
            // The agent's journal was wiped: its seqs restart, and the old ones would all look like duplicates.
            log.warn({ deviceId: d.deviceId, siteId: conn.siteId, hubStored: state.stored, agentLastSeq: d.lastSeq }, 'device seqs restarted at the site; resetting its stream');
            await this.#store.resetWatermark(d.deviceId, d.acked);
            state.stored = d.acked;
            restarted = true;
            // What went out live before the restart has other seqs: none of it is the new stream's.
            state.held = 0;
            state.unstored.clear();
            state.unstoredFull = false;
          }
          await this.#settleSession(state, d, restarted);
          if (d.acked > state.stored) {
            // This hub lost what the agent knows it had stored (in-memory history after a restart).
            await this.#store.append(d.deviceId, state.session!, [], d.acked);
            state.stored = d.acked;
          }
          // Above `stored`, what this hub sent its peers while the store was away: the resend is stored, not sent again.
          state.held = Math.max(state.held, state.stored);
          this.#attach(state, d, conn);
          // Its agent moved here from another hub of a cluster: this hub's state is the device's now,
          // after what that hub stored and did not publish (before any batch of this connection).
          await this.remote.handOver(d.deviceId, state.session, state.stored).catch((err: Error) => log.warn({ deviceId: d.deviceId, err: err.message }, 'hand-over fill failed'));
          return state.stored;
        });
        result.devices.push({ deviceId: d.deviceId, acked });
        this.#announce(state);
      } catch (err) {
        if (!(err instanceof HoichanError)) throw err;
        log.warn({ siteId: conn.siteId, deviceId: d.deviceId, code: err.code, why: err.message }, 'device refused');
        result.rejected.push({ deviceId: d.deviceId, code: err.code, message: err.message });
      }
    }
    return result;
  }

  /**
   * A hello while the store is unreachable (the agent reconnected during an
   * outage): the device resumes from this hub's own state, in the same
   * conference and with the same seqs; anything that needs the store (a new
   * session, a restarted journal, acks another hub gave) waits for it.
   */
  #resumeUnstored(state: DeviceState, d: HelloDevice, conn: AgentConnection): number {
    if (!state.session || state.session.conferenceId !== d.conferenceId) throw unreachable(`${d.deviceId} cannot start streaming into conference ${d.conferenceId} now`);
    if (d.lastSeq < state.stored || d.acked > state.stored) throw unreachable(`the seqs of ${d.deviceId} do not continue what this hub has (${state.stored})`);
    this.#attach(state, d, conn);
    return state.stored;
  }

  /** The hello's description of the device, and `conn` as its owner. */
  #attach(state: DeviceState, d: HelloDevice, conn: AgentConnection): void {
    Object.assign(state, { conferenceId: d.conferenceId, type: d.type, model: d.model, protocol: d.protocol, channels: d.channels });
    state.agentStatus = d.status;
    state.agentReason = d.reason;
    state.owner = conn;
    state.offlineSince = undefined;
    state.lagging = false;
    conn.lastTo.delete(d.deviceId);
    // Forgotten (deviceTtlMs) while this hello waited its turn: it is back.
    if (!this.#devices.has(d.deviceId)) this.#devices.set(d.deviceId, state);
  }

  /**
   * Stores, emits and acks one batch; returns the device's watermark (the ack).
   * Nothing of a refused batch is kept. While the history store is unreachable
   * the batch still goes out live and waits in the device's bounded buffer;
   * the ack then stays at what is stored, and moves on once the store took it.
   */
  async batch(conn: AgentConnection, batch: ParsedBatch, receivedAt: number): Promise<number> {
    const state = this.#owned(conn, batch.deviceId);
    return this.#queued(state, async () => {
      const previous = conn.lastTo.get(batch.deviceId);
      if (previous !== undefined && batch.from <= previous) {
        throw new HoichanError('bad_request', `seq goes backwards: batch ${batch.from}..${batch.to} after one that ended at ${previous} on this connection`);
      }
      if (state.owner !== conn) throw forbidden(`device ${batch.deviceId} was taken over by a newer connection of its site`);
      await this.#flush(state);
      if (batch.from > state.held + 1) {
        throw conflict(`seq gap: the hub has ${batch.deviceId} up to ${state.held}, the batch starts at ${batch.from}; resend from ${state.stored + 1}`);
      }
      if (this.#store.reachable && state.unstored.empty && state.held > state.stored && batch.from > state.stored + 1) {
        // The buffer filled up during the outage: readings it could not keep are only in the agent's journal now.
        // The agent answers a conflict by reconnecting and resending from its ack; none of it goes out live twice.
        throw conflict(`the hub stored ${batch.deviceId} up to ${state.stored} only (its buffer filled while the device history was unreachable); resend from ${state.stored + 1}`);
      }
      conn.lastTo.set(batch.deviceId, batch.to);
      if (batch.to <= state.stored) {
        state.duplicates += batch.readings.length;
        return state.stored;
      }
      const session = state.session!;
      const fresh: Reading[] = [];
      let earlier = 0;
      for (const r of batch.readings) {
        if (r.seq <= state.stored) {
          state.duplicates++;
          continue;
        }
        if (r.seq < session.startSeq) {
          // Journaled before the device moved to this conference: acked (the seqs stay contiguous), never stored or sent.
          earlier++;
          continue;
        }
        const reading: Reading = r;
        const lagMs = receivedAt - (reading.rt + conn.clockOffsetMs);
        if (lagMs > this.#lateAfterMs) reading.late = true;
        if (r.seq > state.held) deviceMetrics.uplinkLag.observe(Math.max(0, lagMs) / 1000);
        fresh.push(reading);
      }
      if (earlier > 0) deviceMetrics.readingsDiscarded.inc({ reason: 'previous_session' }, earlier);
      const gaps = gapsAbove(batch.gaps, Math.max(state.stored, session.startSeq - 1));
      const stored = await this.#keep(state, { session, readings: fresh, gaps, through: batch.to, bytes: 0 }, batch.from);

      // Live: only what this hub's peers have not had (a resend after an outage went out live already).
      const live = fresh.filter((r) => r.seq > state.held);
      const liveGaps = gapsAbove(gaps, state.held);
      state.held = Math.max(state.held, batch.to);
      const labels = { protocol: state.protocol, device_type: state.type };
      deviceMetrics.readingsReceived.inc(labels, live.length);
      state.received += live.length;
      state.rate.add(live.length);
      if (live.length > 0 || liveGaps.length > 0) {
        this.#fanout.readings(state.conferenceId, { deviceId: state.deviceId, readings: live, ...(liveGaps.length > 0 ? { gaps: liveGaps } : {}) });
        deviceMetrics.readingsDelivered.inc(labels, live.length);
        deviceMetrics.fanout.observe((Date.now() - receivedAt) / 1000);
        this.events.emit('readings', { deviceId: state.deviceId, siteId: state.siteId, conferenceId: state.conferenceId, readings: live, gaps: liveGaps });
      }
      // Other hubs hear of a batch once it is stored: one that arrives after seqs they never saw fills them from
      // the shared history first, which must then have them (RemoteDevices). Each drops what it already sent.
      if (stored && (fresh.length > 0 || gaps.length > 0)) {
        this.cluster?.readings({ conferenceId: state.conferenceId, deviceId: state.deviceId, session, to: batch.to, readings: fresh, ...(gaps.length > 0 ? { gaps } : {}) });
      }
      const newest = live[live.length - 1];
      if (newest) this.#updateLag(state, receivedAt - (newest.rt + conn.clockOffsetMs));
      return state.stored;
    });
  }

  /**
   * Stores a batch when the store can take it and nothing older waits;
   * otherwise keeps it in the device's buffer if it continues the buffer and
   * fits its bounds. True when it was stored.
   */
  async #keep(state: DeviceState, entry: UnstoredBatch, from: number): Promise<boolean> {
    if (state.unstored.empty && from <= state.stored + 1 && this.#store.reachable) {
      try {
        await this.#store.append(state.deviceId, entry.session, entry.readings, entry.through, this.#historyBudget(state.siteId));
        state.stored = entry.through;
        state.unstoredFull = false;
        return true;
      } catch (err) {
        log.debug({ deviceId: state.deviceId, err: (err as Error).message }, 'append failed; keeping the batch in memory');
      }
    }
    const kept = state.unstored.through(state.stored);
    if (from > kept + 1 || entry.through <= kept || state.unstoredFull) return false;
    const readings = entry.readings.filter((r) => r.seq > kept);
    const bytes = readings.reduce((n, r) => n + readingBytes(r), 0);
    if (state.unstored.empty) log.warn({ deviceId: state.deviceId, stored: state.stored }, 'device history unreachable: delivering live, acking once stored');
    if (!state.unstored.add({ ...entry, readings, gaps: gapsAbove(entry.gaps, kept), bytes })) {
      state.unstoredFull = true;
      log.warn(
        { deviceId: state.deviceId, stored: state.stored, keptThrough: kept, bytes: state.unstored.bytes, hubBytes: this.#unstoredBudget.used },
        'device buffer full while the history is unreachable (devices.unstoredBytesPerDevice / unstoredBytes): later readings still go out live; the agent resends them for storage',
      );
    }
    return false;
  }

  /** Stores what the device's buffer holds, oldest first, if the store is back; then other hubs hear of it. Never throws. */
  async #flush(state: DeviceState): Promise<void> {
    if (state.unstored.empty || !this.#store.reachable) return;
    let last: UnstoredBatch | undefined;
    let readings = 0;
    try {
      for (let entry = state.unstored.first(); entry; entry = state.unstored.first()) {
        await this.#store.append(state.deviceId, entry.session, entry.readings, entry.through, this.#historyBudget(state.siteId));
        state.stored = Math.max(state.stored, entry.through);
        readings += entry.readings.length;
        state.unstored.shift();
        last = entry;
      }
    } catch (err) {
      log.warn({ deviceId: state.deviceId, err: (err as Error).message }, 'device history still unreachable; keeping the buffer');
    }
    if (!last) return;
    log.info({ deviceId: state.deviceId, stored: state.stored, readings, notKept: state.held - state.stored }, 'device history back: readings delivered during the outage are stored (and acked with the next batch)');
    // The newest stored batch: a hub that missed the outage's readings fills them from the history before it.
    if (state.unstored.empty) this.cluster?.readings({ conferenceId: last.session.conferenceId, deviceId: state.deviceId, session: last.session, to: last.through, readings: last.readings, ...(last.gaps.length > 0 ? { gaps: last.gaps } : {}) });
  }

  /** An alarm ahead of its device's backlog: shown now, delivered again in seq order later. */
  alarm(conn: AgentConnection, notice: AlarmNotice): void {
    const state = this.#owned(conn, notice.deviceId);
    if (notice.reading.seq <= Math.max(state.held, state.noticedAlarmSeq)) return;
    // An alarm journaled before the device moved here is the previous conference's patient.
    if (notice.reading.seq < (state.session?.startSeq ?? Number.MAX_SAFE_INTEGER)) return;
    state.noticedAlarmSeq = notice.reading.seq;
    this.#fanout.alarm(state.conferenceId, state.deviceId, notice.reading);
    this.cluster?.alarm(state.conferenceId, state.deviceId, notice.reading);
  }

  status(conn: AgentConnection, message: StatusMessage): void {
    const site = this.#site(conn.siteId);
    if (message.journal) {
      site.journalPending = message.journal.pending;
      // Only this site's known devices: the record's keys come from the agent and must not grow the hub.
      site.journalByDevice = Object.fromEntries(Object.entries(message.journal.devices).filter(([deviceId]) => this.#devices.get(deviceId)?.siteId === conn.siteId));
      deviceMetrics.journalDepth.set({ site: conn.siteId }, message.journal.pending);
    }
    if (message.parseErrors) {
      // Metric labels only from a fixed set: a protocol the hub does not know is counted as 'other',
      // so invented keys cannot create Prometheus series (each one lives until the hub restarts).
      const totals: Record<string, number> = {};
      for (const [key, total] of Object.entries(message.parseErrors)) {
        const protocol = KNOWN_PROTOCOLS.has(key) ? key : 'other';
        totals[protocol] = (totals[protocol] ?? 0) + total;
      }
      for (const [protocol, total] of Object.entries(totals)) {
        // Totals since the agent started: count what is new (a restarted agent starts again from 0).
        const before = site.parseErrors[protocol] ?? 0;
        const delta = total >= before ? total - before : total;
        if (delta > 0) deviceMetrics.parseErrors.inc({ protocol }, delta);
        site.parseErrors[protocol] = total;
      }
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
    const now = Date.now();
    for (const state of this.#devices.values()) {
      if (state.owner !== conn) continue;
      state.owner = undefined;
      state.offlineSince = now;
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
    clearInterval(this.#sweep);
    clearInterval(this.#flushTimer);
    this.#fanout.close();
    this.events.removeAllListeners();
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

  async #serially<T>(deviceId: string, siteId: string, d: HelloDevice, announced: ReadonlySet<string>, fn: (state: DeviceState) => Promise<T>): Promise<{ state: DeviceState; result: T }> {
    let state = this.#devices.get(deviceId);
    if (!state) {
      // Checked and counted in the same synchronous step, so concurrent hellos cannot both take the last place.
      this.#makeRoom(siteId, deviceId, announced);
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
        held: 0,
        unstored: new UnstoredReadings(this.#unstoredBudget),
        unstoredFull: false,
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
    return { state: s, result: await this.#queued(s, () => fn(s)) };
  }

  /**
   * Opens a new session when the device is new to the store, changes
   * conference, or its journal restarted; tells the conference it left.
   *
   * Where the new session starts: on a conference change, after everything
   * the agent had journaled when it said hello (`lastSeq`), because those
   * readings were taken while the device was the previous conference's (an
   * agent is reconfigured by restarting it). They still come, are still acked
   * and move the watermark, so the journal's seqs stay contiguous and its
   * backlog drains; they are just not stored or sent. A few readings the
   * restarted agent took in the new conference before its hello are lost the
   * same way: erring towards the old patient's data never reaching the new
   * conference. A device the store has no session for (first hello, memory
   * store after a hub restart, expired) starts at the first seq the hub does
   * not have: the hub cannot tell where its backlog was taken, so it is taken
   * as the announced conference's (with Redis the session outlives restarts).
   */
  async #settleSession(state: DeviceState, d: HelloDevice, restarted: boolean): Promise<void> {
    const previous = state.session;
    let startSeq: number;
    if (!previous || restarted) startSeq = state.stored + 1;
    else if (previous.conferenceId !== d.conferenceId) startSeq = Math.max(state.stored, d.lastSeq) + 1;
    else return;
    const session: DeviceSession = { id: randomUUID(), conferenceId: d.conferenceId, startSeq };
    await this.#store.startSession(state.deviceId, session);
    state.session = session;
    state.noticedAlarmSeq = 0;
    const left = previous?.conferenceId ?? (state.conferenceId !== d.conferenceId ? state.conferenceId : undefined);
    if (left !== undefined && left !== d.conferenceId) {
      log.info({ deviceId: state.deviceId, siteId: state.siteId, startSeq }, 'device moved to another conference: new session');
      // Its viewers there keep the device on screen otherwise, looking live.
      const moved: DeviceInfo = { ...this.#info(state), conferenceId: left, status: 'offline', reason: 'device moved to another conference' };
      this.#fanout.status(moved);
      this.events.emit('status', { ...moved, siteId: state.siteId });
      this.cluster?.status({ info: moved, session: null, stored: state.stored });
      state.lastEmitted = undefined;
    }
  }

  /** Refuses the site's next device past maxDevicesPerSite, after forgetting gone devices this hello no longer lists. */
  #makeRoom(siteId: string, deviceId: string, announced: ReadonlySet<string>): void {
    const mine = [...this.#devices.values()].filter((d) => d.siteId === siteId);
    if (mine.length < this.#maxDevicesPerSite) return;
    // Offline devices the site no longer announces were replaced (an agent reconfigured): longest gone first.
    const replaced = mine.filter((d) => !d.owner && !announced.has(d.deviceId)).sort((a, b) => (a.offlineSince ?? 0) - (b.offlineSince ?? 0));
    const excess = mine.length - this.#maxDevicesPerSite + 1;
    if (replaced.length >= excess) {
      for (const d of replaced.slice(0, excess)) this.#forget(d);
      return;
    }
    throw new HoichanError(
      'limit_exceeded',
      `device ${deviceId} refused: site ${siteId} already has ${mine.length} devices, the most one site may stream (devices.maxDevicesPerSite = ${this.#maxDevicesPerSite})`,
    );
  }

  /** A site's history budget shared by its devices, capped per device. */
  #historyBudget(siteId: string): number {
    let devices = 0;
    for (const d of this.#devices.values()) if (d.siteId === siteId) devices++;
    return Math.min(this.#historyBytesPerDevice, Math.floor(this.#historyBytesPerSite / Math.max(1, devices)));
  }

  /** Devices listed in a conference: its own, minus those whose site has been gone for deviceTtlMs. */
  #listed(conferenceId: string): DeviceState[] {
    const cutoff = Date.now() - this.#deviceTtlMs;
    return [...this.#devices.values()].filter((d) => d.conferenceId === conferenceId && !(d.offlineSince !== undefined && d.offlineSince <= cutoff));
  }

  #forgetGone(): void {
    this.remote.sweep();
    const cutoff = Date.now() - this.#deviceTtlMs;
    for (const d of this.#devices.values()) if (!d.owner && d.offlineSince !== undefined && d.offlineSince <= cutoff) this.#forget(d);
    for (const siteId of this.#sites.keys()) {
      if ([...this.#devices.values()].some((d) => d.siteId === siteId)) continue;
      this.#sites.delete(siteId);
      deviceMetrics.journalDepth.remove({ site: siteId });
    }
  }

  #forget(state: DeviceState): void {
    this.#devices.delete(state.deviceId);
    state.unstored.clear();
    log.info({ deviceId: state.deviceId, siteId: state.siteId }, 'device forgotten: its site has been gone for devices.deviceTtlMs or replaced it');
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
    this.events.emit('status', { ...info, siteId: state.siteId });
    this.cluster?.status(this.#clusterState(state));
  }

  #site(siteId: string): SiteState {
    let site = this.#sites.get(siteId);
    if (!site) this.#sites.set(siteId, (site = { journalPending: 0, journalByDevice: {}, parseErrors: {} }));
    return site;
  }
}

function unreachable(why: string): HoichanError {
  return new HoichanError('unavailable', `the device history (Redis) is unreachable and ${why}; try again`);
}

/** The gaps of a batch above `floor`, clipped to start after it. */
function gapsAbove<G extends { from: number; to: number }>(gaps: readonly G[], floor: number): G[] {
  return gaps.filter((g) => g.to > floor).map((g) => ({ ...g, from: Math.max(g.from, floor + 1) }));
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
