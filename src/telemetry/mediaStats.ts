import type { types } from 'mediasoup';
import type { MediaWorker } from '../media/WorkerPool.js';
import { createLogger } from '../common/logger.js';
import {
  MEDIA_METRICS,
  mediaBitrate,
  mediaBytes,
  mediaNacks,
  mediaPackets,
  mediaPacketsLost,
  mediaPlis,
  statsPollSeconds,
  transportRtt,
} from './metrics.js';

const log = createLogger('media-stats');

type Direction = 'in' | 'out';

/** Cumulative counters of one producer or consumer, as of the last poll. */
interface Totals {
  bytes: number;
  packets: number;
  lost: number;
  nacks: number;
  plis: number;
}

/** The latest picture of one stream, for the operations API. */
export interface StreamSnapshot {
  bitrate: number;
  /** Fraction of packets lost in the last RTCP interval, 0..1. */
  fractionLost: number;
  rttMs: number | undefined;
}

interface TrackedStream {
  readonly direction: Direction;
  readonly source: types.Producer | types.Consumer;
  readonly transportId: string;
  readonly peerId: string | undefined;
  readonly labels: { worker: string; conference: string };
  totals: Totals;
  latest: StreamSnapshot | undefined;
}

const ZERO: Totals = { bytes: 0, packets: 0, lost: 0, nacks: 0, plis: 0 };
/** In-flight getStats() requests per poll: bounds the burst a poll puts on the workers' channels. */
const POLL_CONCURRENCY = 32;

/**
 * Follows every producer and consumer of the pool's workers through mediasoup
 * observers (so it sees plain and pipe transports as well as WebRTC ones) and,
 * when polled (once per interval), asks each for getStats(). Growth of the cumulative
 * counters since the last poll is added to the media counters; bitrate, loss
 * and RTT feed gauges, the RTT histogram and the operations API.
 *
 * Cost: one worker request per producer and consumer per interval, at most
 * POLL_CONCURRENCY in flight; a poll asked for while one runs joins that one.
 */
export class MediaStatsPoller {
  readonly #streams = new Map<string, TrackedStream>();
  /** Live routers per (worker, conference): label sets are removed when it drops to zero. */
  readonly #routersByLabels = new Map<string, number>();
  #polling: Promise<void> | undefined;
  #closed = false;

  /** Starts following a (new or replacement) worker. */
  watchWorker(worker: MediaWorker): void {
    const slot = String(worker.slot);
    worker.worker.observer.on('newrouter', (router) => {
      const conference = String((router.appData as { conferenceId?: unknown }).conferenceId ?? 'none');
      const labels = { worker: slot, conference };
      const key = `${slot}\u0000${conference}`;
      this.#routersByLabels.set(key, (this.#routersByLabels.get(key) ?? 0) + 1);
      router.observer.once('close', () => {
        const left = (this.#routersByLabels.get(key) ?? 1) - 1;
        if (left > 0) {
          this.#routersByLabels.set(key, left);
          return;
        }
        this.#routersByLabels.delete(key);
        // A closed conference must not keep series forever: conference ids come and go.
        for (const metric of MEDIA_METRICS) {
          for (const direction of ['in', 'out'] as const) metric.remove({ ...labels, direction });
        }
        transportRtt.remove(labels);
      });
      router.observer.on('newtransport', (transport) => {
        transport.observer.on('newproducer', (producer) => this.#track('in', producer, transport.id, labels));
        transport.observer.on('newconsumer', (consumer) => this.#track('out', consumer, transport.id, labels));
      });
    });
  }

  /** The latest snapshot of a producer or consumer, if it was polled at least once. */
  snapshot(id: string): StreamSnapshot | undefined {
    return this.#streams.get(id)?.latest;
  }

  /** Polls every stream now; concurrent calls share one poll. The owner calls it once per interval. */
  poll(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#polling ??= this.#pollAll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  close(): void {
    this.#closed = true;
    this.#streams.clear();
  }

  #track(direction: Direction, source: types.Producer | types.Consumer, transportId: string, labels: TrackedStream['labels']): void {
    const peerId = (source.appData as { peerId?: unknown }).peerId;
    this.#streams.set(source.id, {
      direction,
      source,
      transportId,
      peerId: typeof peerId === 'string' ? peerId : undefined,
      labels,
      totals: ZERO,
      latest: undefined,
    });
    // Producer and consumer observers both emit 'close'; their typed unions do not merge.
    (source.observer as unknown as NodeJS.EventEmitter).once('close', () => this.#streams.delete(source.id));
  }

  async #pollAll(): Promise<void> {
    const end = statsPollSeconds.startTimer();
    const streams = [...this.#streams.values()];
    const bitrate = new Map<string, { labels: TrackedStream['labels']; direction: Direction; bps: number }>();
    const rttByTransport = new Map<string, { labels: TrackedStream['labels']; rttMs: number }>();
    let next = 0;
    const worker = async () => {
      while (next < streams.length) {
        const stream = streams[next++]!;
        if (stream.source.closed) continue;
        let stats: (types.ProducerStat | types.ConsumerStat)[];
        try {
          stats = await stream.source.getStats();
        } catch {
          continue; // closed while we asked
        }
        this.#account(stream, stats);
        const latest = stream.latest!;
        const key = `${stream.labels.worker}\u0000${stream.labels.conference}\u0000${stream.direction}`;
        const sum = bitrate.get(key) ?? { labels: stream.labels, direction: stream.direction, bps: 0 };
        sum.bps += latest.bitrate;
        bitrate.set(key, sum);
        if (latest.rttMs !== undefined && latest.rttMs > 0) {
          const seen = rttByTransport.get(stream.transportId);
          if (!seen || seen.rttMs < latest.rttMs) rttByTransport.set(stream.transportId, { labels: stream.labels, rttMs: latest.rttMs });
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(POLL_CONCURRENCY, streams.length) }, worker));
      mediaBitrate.reset();
      for (const { labels, direction, bps } of bitrate.values()) mediaBitrate.set({ ...labels, direction }, bps);
      for (const { labels, rttMs } of rttByTransport.values()) transportRtt.observe(labels, rttMs / 1000);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'media stats poll failed');
    } finally {
      end();
    }
  }

  #account(stream: TrackedStream, stats: (types.ProducerStat | types.ConsumerStat)[]): void {
    // A producer reports one inbound-rtp entry per encoding; a consumer reports
    // its outbound-rtp entry plus its producer's stream, which is not ours to count.
    const own = stats.filter((s) => (stream.direction === 'in' ? s.type === 'inbound-rtp' : s.type === 'outbound-rtp'));
    const totals: Totals = { bytes: 0, packets: 0, lost: 0, nacks: 0, plis: 0 };
    let bitrate = 0;
    let fractionLost = 0;
    let rttMs: number | undefined;
    for (const s of own) {
      totals.bytes += s.byteCount;
      totals.packets += s.packetCount;
      totals.lost += Math.max(0, s.packetsLost);
      totals.nacks += s.nackCount;
      totals.plis += s.pliCount;
      bitrate += s.bitrate;
      // RTCP's fraction lost is an 8-bit fixed-point number (x/256).
      fractionLost = Math.max(fractionLost, s.fractionLost / 256);
      if (s.roundTripTime !== undefined) rttMs = Math.max(rttMs ?? 0, s.roundTripTime);
    }
    const labels = { ...stream.labels, direction: stream.direction };
    const prev = stream.totals;
    // Counters only grow; a stream that restarted its counts (new SSRC) is counted from zero again.
    const delta = (now: number, before: number) => (now >= before ? now - before : now);
    mediaBytes.inc(labels, delta(totals.bytes, prev.bytes));
    mediaPackets.inc(labels, delta(totals.packets, prev.packets));
    mediaPacketsLost.inc(labels, delta(totals.lost, prev.lost));
    mediaNacks.inc(labels, delta(totals.nacks, prev.nacks));
    mediaPlis.inc(labels, delta(totals.plis, prev.plis));
    stream.totals = totals;
    stream.latest = { bitrate, fractionLost, rttMs };
  }
}
