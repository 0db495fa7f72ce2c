import { Counter, Gauge, Histogram, collectDefaultMetrics, register } from 'prom-client';

/**
 * Hoichan's Prometheus metrics, on prom-client's default registry (device-flow
 * metrics live beside them in deviceMetrics.ts). Label sets are bounded:
 * `worker` is a pool slot, `conference` a conference id (bounded by design and
 * removed when the conference closes), `request` and `code` come from the
 * signaling contract. Never a peer id, user id or device serial.
 * docs/OPERATIONS.md lists every metric with its meaning.
 */

export { register };

/** Process and Node.js defaults (CPU, RSS, heap, event-loop lag, GC), unprefixed so stock dashboards work. */
export function enableDefaultMetrics(): void {
  // Idempotent: several hubs in one test process, or another module, may ask too.
  if (register.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics({ register });
}

// ---- mediasoup workers (label: worker = pool slot) -------------------------

export const workerUp = new Gauge({
  name: 'hoichan_worker_up',
  help: '1 when the worker slot has a live mediasoup worker, 0 while it is being respawned',
  labelNames: ['worker'] as const,
});

export const workerCpuSeconds = new Counter({
  name: 'hoichan_worker_cpu_seconds_total',
  help: 'CPU time (user + system) of the mediasoup worker process, from getResourceUsage(); resets when the worker is replaced',
  labelNames: ['worker'] as const,
});

export const workerMaxRssBytes = new Gauge({
  name: 'hoichan_worker_max_rss_bytes',
  help: 'Peak resident set size of the mediasoup worker process (ru_maxrss)',
  labelNames: ['worker'] as const,
});

export const workerRssBytes = new Gauge({
  name: 'hoichan_worker_rss_bytes',
  help: 'Current resident set size of the mediasoup worker process (/proc/<pid>/statm; Linux only)',
  labelNames: ['worker'] as const,
});

export const workerObjects = new Gauge({
  name: 'hoichan_worker_objects',
  help: 'Live mediasoup objects on the worker, by type (router, transport, producer, consumer)',
  labelNames: ['worker', 'type'] as const,
});

export const workerRestarts = new Counter({
  name: 'hoichan_worker_restarts_total',
  help: 'mediasoup worker processes that died and were replaced in this slot',
  labelNames: ['worker'] as const,
});

// ---- conferences ------------------------------------------------------------

export const conferencesGauge = new Gauge({
  name: 'hoichan_conferences',
  help: 'Open conferences on this hub',
});

export const conferencePeers = new Gauge({
  name: 'hoichan_conference_peers',
  help: 'Peers joined to the conference, by the worker of the router their transports are on',
  labelNames: ['conference', 'worker'] as const,
});

export const conferenceRouters = new Gauge({
  name: 'hoichan_conference_routers',
  help: 'Routers of the conference by worker (1: the conference uses this worker)',
  labelNames: ['conference', 'worker'] as const,
});

export const conferencePipes = new Gauge({
  name: 'hoichan_conference_pipes',
  help: "Producers piped between the conference's routers",
  labelNames: ['conference'] as const,
});

// ---- media flow (labels: worker, conference, direction) ----------------------
// direction "in" = RTP the hub receives from senders (producers),
// direction "out" = RTP the hub sends to receivers (consumers).

const mediaLabels = ['worker', 'conference', 'direction'] as const;

export const mediaBytes = new Counter({
  name: 'hoichan_media_bytes_total',
  help: 'RTP bytes of media streams, from producer (in) and consumer (out) getStats(), polled',
  labelNames: mediaLabels,
});

export const mediaPackets = new Counter({
  name: 'hoichan_media_packets_total',
  help: 'RTP packets of media streams, from producer (in) and consumer (out) getStats(), polled',
  labelNames: mediaLabels,
});

export const mediaPacketsLost = new Counter({
  name: 'hoichan_media_packets_lost_total',
  help: 'Packets lost: in = lost between sender and hub (seen by the hub), out = lost between hub and receiver (receiver reports)',
  labelNames: mediaLabels,
});

export const mediaNacks = new Counter({
  name: 'hoichan_media_nacks_total',
  help: 'NACK RTCP messages: in = sent by the hub to senders, out = received by the hub from receivers',
  labelNames: mediaLabels,
});

export const mediaPlis = new Counter({
  name: 'hoichan_media_plis_total',
  help: 'PLI (keyframe requests): in = sent by the hub to senders, out = received by the hub from receivers',
  labelNames: mediaLabels,
});

export const mediaBitrate = new Gauge({
  name: 'hoichan_media_bitrate_bps',
  help: 'Sum of the current bitrate of the media streams, as mediasoup measures it (bits per second) at the last poll',
  labelNames: mediaLabels,
});

export const transportRtt = new Histogram({
  name: 'hoichan_transport_rtt_seconds',
  help: 'Round-trip time per transport (the largest RTT of its streams), one observation per transport per stats poll',
  labelNames: ['worker', 'conference'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
});

export const statsPollSeconds = new Histogram({
  name: 'hoichan_stats_poll_seconds',
  help: 'Time one media stats poll took (all transports, producers and consumers of every worker)',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
});

export const MEDIA_METRICS = [mediaBytes, mediaPackets, mediaPacketsLost, mediaNacks, mediaPlis, mediaBitrate] as const;

// ---- signaling ----------------------------------------------------------------

export const signalingSockets = new Gauge({
  name: 'hoichan_signaling_sockets',
  help: 'Connected socket.io clients',
});

export const signalingRequests = new Counter({
  name: 'hoichan_signaling_requests_total',
  help: 'Signaling requests answered, by request name and result code (ok or an error code of the contract)',
  labelNames: ['request', 'code'] as const,
});

export const signalingRequestSeconds = new Histogram({
  name: 'hoichan_signaling_request_duration_seconds',
  help: 'Time from receiving a signaling request to its ack',
  labelNames: ['request'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
});

export const signalingRecoveryStored = new Gauge({
  name: 'hoichan_signaling_recovery_events',
  help: 'Signaling events socket.io keeps for sockets that may recover their connection (device events are never kept), by namespace',
  labelNames: ['namespace'] as const,
});

export const signalingRecoveryEvicted = new Counter({
  name: 'hoichan_signaling_recovery_evicted_total',
  help: 'Signaling events dropped from the recovery store by its count bound (signaling.recoveryMaxEvents) before their window ended; a socket that missed one joins again instead of recovering',
});

/** Requests per second over the last few whole seconds, for the operations page. */
class RateWindow {
  // One bucket per second, plus the current (partial) second.
  readonly #buckets: number[];
  #second = 0;

  constructor(readonly seconds: number) {
    this.#buckets = new Array<number>(seconds + 1).fill(0);
  }

  add(now = Date.now()): void {
    this.#advance(now);
    this.#buckets[this.#second % this.#buckets.length]!++;
  }

  perSecond(now = Date.now()): number {
    this.#advance(now);
    let sum = 0;
    for (let s = this.#second - this.seconds; s < this.#second; s++) sum += this.#buckets[s % this.#buckets.length]!;
    return sum / this.seconds;
  }

  #advance(now: number): void {
    const second = Math.floor(now / 1000);
    if (this.#second === 0) this.#second = second;
    // Clear the buckets of the seconds that passed since the last request.
    for (let s = this.#second + 1; s <= second && s <= this.#second + this.#buckets.length; s++) this.#buckets[s % this.#buckets.length] = 0;
    if (second > this.#second) this.#second = second;
  }
}

const requestRate = new RateWindow(10);

/** Called once per answered signaling request (SignalingServer#dispatch). */
export function recordSignalingRequest(request: string, code: string, seconds: number): void {
  signalingRequests.inc({ request, code });
  signalingRequestSeconds.observe({ request }, seconds);
  requestRate.add();
}

export function signalingRequestsPerSecond(): number {
  return requestRate.perSecond();
}
