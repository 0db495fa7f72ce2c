import type { Server as SocketServer } from 'socket.io';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { WorkerPool } from '../media/WorkerPool.js';
import { MediaStatsPoller } from './mediaStats.js';
import type { DeviceStreamStats, OpsReport } from '../contract/ops.js';
import {
  conferencePeers,
  conferencePipes,
  conferenceRouters,
  conferencesGauge,
  enableDefaultMetrics,
  signalingRequestsPerSecond,
  signalingSockets,
  workerCpuSeconds,
  workerMaxRssBytes,
  workerObjects,
  workerRestarts,
  workerRssBytes,
  workerUp,
} from './metrics.js';
import { WorkerCpuSampler, currentRss, workerUsage } from './workerUsage.js';

/** One peer's media as of the last poll (bits per second, loss 0..1, RTT in ms). */
export interface PeerNetworkSample {
  bitrateIn: number;
  bitrateOut: number;
  lossIn: number;
  lossOut: number;
  rttMs: number | undefined;
}

/** How often media stats and worker CPU are sampled unless told otherwise. */
export const DEFAULT_STATS_INTERVAL_MS = 5000;

export interface HubTelemetrySources {
  pool: WorkerPool;
  conferences: ConferenceManager;
  statsIntervalMs?: number;
}


/**
 * The hub's telemetry: watches the worker pool through its events and the
 * mediasoup observers, samples worker CPU and media stats once per interval,
 * and refreshes the gauges before each scrape. Metrics live on prom-client's
 * default registry (one hub per process).
 */
export class HubTelemetry {
  readonly #pool: WorkerPool;
  readonly #conferences: ConferenceManager;
  #io: SocketServer | undefined;
  readonly #media = new MediaStatsPoller();
  readonly #cpu = new WorkerCpuSampler();
  readonly #timer: NodeJS.Timeout;
  readonly statsIntervalMs: number;
  /** Device-stream statistics for /api/ops, when the hub has a device stream service. */
  deviceStats: () => DeviceStreamStats[] = () => [];

  constructor({ pool, conferences, statsIntervalMs = DEFAULT_STATS_INTERVAL_MS }: HubTelemetrySources) {
    enableDefaultMetrics();
    this.#pool = pool;
    this.#conferences = conferences;
    this.statsIntervalMs = statsIntervalMs;
    for (const worker of pool.workers) {
      this.#media.watchWorker(worker);
      workerRestarts.inc({ worker: String(worker.slot) }, 0); // the series exists before the first restart
    }
    pool.on('workerdied', this.#onWorkerDied);
    pool.on('workerreplaced', this.#onWorkerReplaced);
    this.#timer = setInterval(() => void this.sample(), statsIntervalMs);
    this.#timer.unref();
    void this.#cpu.sample(pool.workers);
  }

  /** The socket.io server exists after the HTTP app: it is attached once created. */
  watchSignaling(io: SocketServer): void {
    this.#io = io;
  }

  /** One interval's sampling: media stats of every stream and worker CPU. Tests call it to skip the wait. */
  async sample(): Promise<void> {
    await Promise.all([this.#media.poll(), this.#cpu.sample(this.#pool.workers)]);
  }

  /** Sets the gauges that are read at scrape time (worker usage and counts, conferences, sockets). */
  async refresh(): Promise<void> {
    const pool = this.#pool;
    const live = pool.workers;
    workerUp.reset();
    for (let slot = 0; slot < pool.size; slot++) workerUp.set({ worker: String(slot) }, live.some((w) => w.slot === slot) ? 1 : 0);

    const usages = await Promise.all(live.map((w) => workerUsage(w)));
    workerCpuSeconds.reset();
    workerMaxRssBytes.reset();
    workerRssBytes.reset();
    workerObjects.reset();
    live.forEach((w, i) => {
      const worker = String(w.slot);
      const usage = usages[i];
      if (usage) {
        workerCpuSeconds.inc({ worker }, usage.cpuSeconds);
        workerMaxRssBytes.set({ worker }, usage.maxRssBytes);
        if (usage.rssBytes !== undefined) workerRssBytes.set({ worker }, usage.rssBytes);
      }
      for (const [type, count] of [
        ['router', w.counts.routers],
        ['transport', w.counts.transports],
        ['producer', w.counts.producers],
        ['consumer', w.counts.consumers],
      ] as const) {
        workerObjects.set({ worker, type }, count);
      }
    });

    const conferences = this.#conferences.list();
    conferencesGauge.set(conferences.length);
    conferencePeers.reset();
    conferenceRouters.reset();
    conferencePipes.reset();
    for (const c of conferences) {
      for (const r of c.routers) {
        conferencePeers.set({ conference: c.id, worker: String(r.workerSlot) }, r.peers);
        conferenceRouters.set({ conference: c.id, worker: String(r.workerSlot) }, 1);
      }
      conferencePipes.set({ conference: c.id }, c.pipes);
    }
    signalingSockets.set(this.#socketCount());
  }

  /**
   * One peer's network as of the last stats poll: what it sends (its producers),
   * what the hub sends it (its consumers), worst loss each way, worst RTT.
   * Undefined before the first poll saw any of its streams.
   */
  peerNetwork(peer: { producers: ReadonlyMap<string, unknown>; consumers: ReadonlyMap<string, unknown> }): PeerNetworkSample | undefined {
    const sample: PeerNetworkSample = { bitrateIn: 0, bitrateOut: 0, lossIn: 0, lossOut: 0, rttMs: undefined };
    let seen = false;
    for (const [ids, dir] of [[peer.producers.keys(), 'in'], [peer.consumers.keys(), 'out']] as const) {
      for (const id of ids) {
        const s = this.#media.snapshot(id);
        if (!s) continue;
        seen = true;
        if (dir === 'in') {
          sample.bitrateIn += s.bitrate;
          sample.lossIn = Math.max(sample.lossIn, s.fractionLost);
        } else {
          sample.bitrateOut += s.bitrate;
          sample.lossOut = Math.max(sample.lossOut, s.fractionLost);
        }
        if (s.rttMs !== undefined && s.rttMs > 0) sample.rttMs = Math.max(sample.rttMs ?? 0, s.rttMs);
      }
    }
    return seen ? sample : undefined;
  }

  ops(): OpsReport {
    const snapshot = (id: string) => this.#media.snapshot(id);
    const sum = (ids: Iterable<string>, pick: (s: NonNullable<ReturnType<typeof snapshot>>) => number, combine: (a: number, b: number) => number) => {
      let total = 0;
      for (const id of ids) {
        const s = snapshot(id);
        if (s) total = combine(total, pick(s));
      }
      return total;
    };
    const add = (a: number, b: number) => a + b;
    return {
      generatedAt: new Date().toISOString(),
      statsIntervalSeconds: this.statsIntervalMs / 1000,
      workers: this.#pool.workers.map((w) => {
        const usage = this.#cpu.percent(w.worker.pid);
        return {
          slot: w.slot,
          pid: w.worker.pid,
          cpuPercent: usage === undefined ? null : Math.round(usage * 10) / 10,
          rssBytes: currentRssOrNull(w.worker.pid),
          ...w.counts,
          webRtcPort: w.webRtcPort,
        };
      }),
      conferences: this.#conferences.list().map((c) => ({
        conferenceId: c.id,
        workerSlot: c.routers[0]?.workerSlot ?? null,
        routers: c.routers,
        pipes: c.pipes,
        peers: c.peers.map((peer) => ({
          ...peer.summary,
          workerSlot: c.homeOf(peer.id)?.workerSlot ?? null,
          producers: peer.producers.size,
          consumers: peer.consumers.size,
          bitrateIn: Math.round(sum(peer.producers.keys(), (s) => s.bitrate, add)),
          bitrateOut: Math.round(sum(peer.consumers.keys(), (s) => s.bitrate, add)),
          packetLossIn: sum(peer.producers.keys(), (s) => s.fractionLost, Math.max),
          packetLossOut: sum(peer.consumers.keys(), (s) => s.fractionLost, Math.max),
        })),
      })),
      devices: this.#deviceStatsOrEmpty(),
      signaling: {
        sockets: this.#socketCount(),
        requestsPerSecond: Math.round(signalingRequestsPerSecond() * 10) / 10,
      },
    };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#pool.off('workerdied', this.#onWorkerDied);
    this.#pool.off('workerreplaced', this.#onWorkerReplaced);
    this.#media.close();
  }

  readonly #onWorkerDied = (dead: { slot: number }): void => {
    workerRestarts.inc({ worker: String(dead.slot) });
  };

  readonly #onWorkerReplaced = (replacement: Parameters<MediaStatsPoller['watchWorker']>[0]): void => {
    this.#media.watchWorker(replacement);
  };

  #socketCount(): number {
    return this.#io?.of('/').sockets.size ?? 0;
  }

  #deviceStatsOrEmpty(): DeviceStreamStats[] {
    try {
      return this.deviceStats() ?? [];
    } catch {
      return [];
    }
  }
}

function currentRssOrNull(pid: number): number | null {
  return currentRss(pid) ?? null;
}
