import type { ConferenceSession } from './session';

/** The fields of an RTCStats entry (inbound/outbound RTP, remote reports, candidate pairs) this reads. */
interface StatsEntry {
  type: string;
  bytesReceived?: number;
  packetsReceived?: number;
  packetsLost?: number;
  bytesSent?: number;
  packetsSent?: number;
  roundTripTime?: number;
  nominated?: boolean;
  currentRoundTripTime?: number;
}

export type QualityLevel = 'good' | 'fair' | 'poor' | 'none';

export interface NetworkQuality {
  level: QualityLevel;
  /** kbit/s over the last interval, all of the peer's media together. */
  kbps: number;
  /** Percent of packets lost over the last interval. */
  lossPercent: number;
  /** Round-trip time in ms, when the browser reports one. */
  rttMs: number | undefined;
}

interface Counters {
  bytes: number;
  packets: number;
  lost: number;
  at: number;
}

// Thresholds as in common WebRTC quality indicators: above ~2 % loss or
// ~300 ms RTT a video call visibly degrades; above ~8 % / 600 ms it breaks up.
function levelOf(kbps: number, lossPercent: number, rttMs: number | undefined): QualityLevel {
  if (kbps < 1) return 'none';
  const rtt = rttMs ?? 0;
  if (lossPercent > 8 || rtt > 600) return 'poor';
  if (lossPercent > 2 || rtt > 300) return 'fair';
  return 'good';
}

/**
 * Samples getStats() per peer every interval: remote peers from their consumers
 * (inbound-rtp), this peer from its producers (outbound-rtp plus the hub's
 * receiver reports). The self key is the session's own peerId.
 */
export class NetworkQualityMonitor {
  readonly #session: ConferenceSession;
  readonly #previous = new Map<string, Counters>();
  #timer = 0;

  constructor(
    session: ConferenceSession,
    private readonly onUpdate: (peerId: string, quality: NetworkQuality) => void,
    private readonly intervalMs = 2000,
  ) {
    this.#session = session;
  }

  start(): void {
    this.stop();
    this.#timer = window.setInterval(() => void this.sample().catch(() => undefined), this.intervalMs);
  }

  stop(): void {
    window.clearInterval(this.#timer);
  }

  async sample(): Promise<void> {
    const totals = new Map<string, Counters & { rtt: number[] }>();
    const add = (peerId: string, bytes: number, packets: number, lost: number, rtt?: number) => {
      let t = totals.get(peerId);
      if (!t) totals.set(peerId, (t = { bytes: 0, packets: 0, lost: 0, at: performance.now(), rtt: [] }));
      t.bytes += bytes;
      t.packets += packets;
      t.lost += lost;
      if (rtt !== undefined && rtt > 0) t.rtt.push(rtt * 1000);
    };

    for (const { consumer, info } of this.#session.consumers.values()) {
      const report = await consumer.getStats();
      let pairRtt: number | undefined;
      let remoteRtt: number | undefined;
      report.forEach((s: StatsEntry) => {
        if (s.type === 'inbound-rtp') add(info.peerId, s.bytesReceived ?? 0, s.packetsReceived ?? 0, Math.max(0, s.packetsLost ?? 0));
        else if (s.type === 'remote-outbound-rtp' && s.roundTripTime) remoteRtt = s.roundTripTime;
        else if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) pairRtt = s.currentRoundTripTime;
      });
      add(info.peerId, 0, 0, 0, remoteRtt ?? pairRtt);
    }

    const self = this.#session.peerId;
    for (const producer of this.#session.ownProducers.values()) {
      const report = await producer.getStats();
      report.forEach((s: StatsEntry) => {
        if (s.type === 'outbound-rtp') {
          add(self, s.bytesSent ?? 0, s.packetsSent ?? 0, 0);
        } else if (s.type === 'remote-inbound-rtp') {
          add(self, 0, 0, Math.max(0, s.packetsLost ?? 0), s.roundTripTime);
        }
      });
    }

    for (const [peerId, now] of totals) {
      const before = this.#previous.get(peerId);
      this.#previous.set(peerId, now);
      if (!before) continue;
      const seconds = (now.at - before.at) / 1000;
      const bytes = Math.max(0, now.bytes - before.bytes);
      const packets = Math.max(0, now.packets - before.packets);
      const lost = Math.max(0, now.lost - before.lost);
      const kbps = seconds > 0 ? (bytes * 8) / 1000 / seconds : 0;
      const lossPercent = packets + lost > 0 ? (100 * lost) / (packets + lost) : 0;
      const rttMs = now.rtt.length ? now.rtt.reduce((a, b) => a + b, 0) / now.rtt.length : undefined;
      this.onUpdate(peerId, { level: levelOf(kbps, lossPercent, rttMs), kbps, lossPercent, rttMs });
    }
    // Peers with no media left: forget, so a returning peer starts fresh.
    for (const peerId of [...this.#previous.keys()]) {
      if (!totals.has(peerId)) {
        this.#previous.delete(peerId);
        this.onUpdate(peerId, { level: 'none', kbps: 0, lossPercent: 0, rttMs: undefined });
      }
    }
  }
}
