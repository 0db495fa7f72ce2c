import type { types } from 'mediasoup';
import { createLogger, type Logger } from '../common/logger.js';
import { BandwidthPolicy, LEVELS, videoStates, type BandwidthPolicyOptions, type PolicyVideo, type VideoRank, type VideoState } from './bandwidthPolicy.js';
import type { ProducerSource, Role } from './events.js';
import type { Peer } from './Peer.js';

/** Who sends what a consumer receives: enough to rank it stage or thumbnail when last-N names no stage. */
export interface ConsumedFrom {
  source: ProducerSource;
  role: Role;
}

/**
 * Stage or thumbnail, until the conference's last-N work names a stage per
 * viewer (setVideoPreferences): shared screens and device video (ultrasound)
 * are what a case conference is about; a site's camera shows the patient;
 * the other cameras are faces. A viewer whose videos are all thumbnails gets
 * its oldest one as stage (BandwidthGovernor), so one remote camera is never
 * treated as the least important thing on the page.
 */
export function defaultVideoRank(from: ConsumedFrom): VideoRank {
  return from.source !== 'camera' || from.role === 'site' ? 'stage' : 'thumbnail';
}

/** Tells one viewer its video was suspended or resumed (peer events `videoSuspended` / `videoResumed`). */
function tell(peer: Peer, consumer: types.Consumer, suspended: boolean): void {
  if (suspended) peer.notify('videoSuspended', { consumerId: consumer.id, producerId: consumer.producerId, reason: 'bandwidth' });
  else peer.notify('videoResumed', { consumerId: consumer.id, producerId: consumer.producerId });
}

interface Governed {
  consumer: types.Consumer;
  state: VideoState | undefined;
  /** The rank its mediasoup priority was last set for. */
  prioritized?: VideoRank | undefined;
}

interface Viewer {
  peer: Peer;
  transport: types.WebRtcTransport;
  policy: BandwidthPolicy;
  videos: Map<string, Governed>;
  audio: Set<string>;
  availableBps: number | undefined;
}

/**
 * What the governor needs of the conference. The conference stays the one
 * place that pauses, resumes and sets layers of a consumer (with last-N), so
 * the two never undo each other: it asks isSuspended() and layerCap(), and the
 * governor calls refresh() when its answer for a viewer changed.
 */
export interface BandwidthHost {
  /** Re-decide what flows to this viewer (last-N and bandwidth together). */
  refresh(peer: Peer): void;
  /** The viewer would get this video now, bandwidth aside: it resumed it, last-N forwards it, its sender sends. */
  wanted(consumer: types.Consumer): boolean;
  /** Stage or thumbnail for this viewer. */
  rank(consumer: types.Consumer): VideoRank;
}

export interface BandwidthGovernorOptions {
  /** false: no video is ever suspended or capped (media.bandwidthPolicy off). */
  enabled?: boolean;
  /** How often each viewer's estimate is read (ms). */
  intervalMs?: number;
  policy?: Partial<BandwidthPolicyOptions>;
  log?: Logger;
}

/**
 * Applies the BandwidthPolicy to a conference's viewers: once a second per
 * connected recv transport it reads the available outgoing bitrate and the
 * consumers' scores and decides, per video, full, capped at the lowest layer,
 * or suspended. Audio consumers are only counted: they are what the ladder
 * protects. The viewer hears `videoSuspended` / `videoResumed`.
 */
export class BandwidthGovernor {
  readonly #viewers = new Map<string, Viewer>();
  readonly #options: BandwidthGovernorOptions;
  readonly #host: BandwidthHost;
  readonly #log: Logger;
  readonly #timer: NodeJS.Timeout | undefined;
  #sampling = false;

  constructor(host: BandwidthHost, options: BandwidthGovernorOptions = {}) {
    this.#host = host;
    this.#options = options;
    this.#log = options.log ?? createLogger('bandwidth');
    if (options.enabled === false) return;
    this.#timer = setInterval(() => void this.#sampleAll(), options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** A consumer the conference created for `peer` on `transport`. */
  add(peer: Peer, transport: types.WebRtcTransport, consumer: types.Consumer): void {
    if (this.#options.enabled === false) return;
    let viewer = this.#viewers.get(transport.id);
    if (!viewer) {
      viewer = { peer, transport, policy: new BandwidthPolicy(this.#options.policy), videos: new Map(), audio: new Set(), availableBps: undefined };
      this.#viewers.set(transport.id, viewer);
      transport.observer.once('close', () => this.#viewers.delete(transport.id));
    }
    const v = viewer;
    if (consumer.kind === 'audio') {
      v.audio.add(consumer.id);
      consumer.observer.once('close', () => v.audio.delete(consumer.id));
      return;
    }
    v.videos.set(consumer.id, { consumer, state: undefined });
    consumer.observer.once('close', () => v.videos.delete(consumer.id));
  }

  /** Held back from its viewer for bandwidth. */
  isSuspended(consumerId: string): boolean {
    return this.#find(consumerId)?.governed.state === 'suspended';
  }

  /** The highest spatial layer bandwidth allows (0), or undefined: no cap. */
  layerCap(consumerId: string): number | undefined {
    return this.#find(consumerId)?.governed.state === 'low' ? 0 : undefined;
  }

  /** Tells the viewer again that a video it just asked for is suspended (its resumeConsumer did not undo it). */
  remind(peer: Peer, consumer: types.Consumer): void {
    if (this.isSuspended(consumer.id)) tell(peer, consumer, true);
  }

  /** The bandwidth ladder level of a peer's recv transport(s), for ops and tests: the most degraded one. */
  levelOf(peerId: string): (typeof LEVELS)[number] | undefined {
    let level: number | undefined;
    for (const v of this.#viewers.values()) if (v.peer.id === peerId && v.videos.size > 0) level = Math.max(level ?? 0, v.policy.level);
    return level === undefined ? undefined : LEVELS[level];
  }

  close(): void {
    clearInterval(this.#timer);
    this.#viewers.clear();
  }

  #find(consumerId: string): { viewer: Viewer; governed: Governed } | undefined {
    for (const viewer of this.#viewers.values()) {
      const governed = viewer.videos.get(consumerId);
      if (governed) return { viewer, governed };
    }
    return undefined;
  }

  /** Videos that would flow but for bandwidth, and a stage among them (the oldest, if the host names none). */
  #policyVideos(v: Viewer): PolicyVideo[] {
    const wanted = [...v.videos.values()].filter((g) => !g.consumer.closed && this.#host.wanted(g.consumer));
    const ranks = wanted.map((g) => this.#host.rank(g.consumer));
    const hasStage = ranks.includes('stage');
    return wanted.map((g, i) => ({
      id: g.consumer.id,
      rank: hasStage || i > 0 ? ranks[i]! : 'stage',
      layered: g.consumer.type === 'simulcast' || g.consumer.type === 'svc',
      score: g.state === 'suspended' ? undefined : g.consumer.score.score,
    }));
  }

  async #sampleAll(): Promise<void> {
    if (this.#sampling) return; // a slow worker: skip a tick rather than pile up requests
    this.#sampling = true;
    try {
      await Promise.all([...this.#viewers.values()].map((v) => this.#sample(v)));
    } finally {
      this.#sampling = false;
    }
  }

  async #sample(v: Viewer): Promise<void> {
    // Only a connected transport has an estimate worth the name (a fresh one reports its initial value).
    if (v.transport.closed || v.transport.dtlsState !== 'connected' || v.videos.size === 0) return;
    try {
      const [stats] = await v.transport.getStats();
      v.availableBps = stats?.availableOutgoingBitrate;
    } catch {
      return; // closed meanwhile
    }
    const videos = this.#policyVideos(v);
    const step = v.policy.update({ nowMs: performance.now(), availableBps: v.availableBps, audioCount: v.audio.size, videos });
    if (step) {
      this.#log.info(
        { peerId: v.peer.id, transportId: v.transport.id, from: LEVELS[step.from], to: LEVELS[step.to], reason: step.reason, availableBps: v.availableBps, holdDownMs: v.policy.holdDownMs },
        'viewer bandwidth level changed',
      );
    }
    this.#apply(v, videos);
  }

  /** Gives every video of the viewer the state its level gives it; the host applies it. */
  #apply(v: Viewer, videos: PolicyVideo[]): void {
    const states = videoStates(v.policy.level, videos);
    const ranks = new Map(videos.map((p) => [p.id, p.rank]));
    let changed = false;
    for (const g of v.videos.values()) {
      if (g.consumer.closed) continue;
      // Not wanted now (last-N off, not resumed, sender paused): nothing to hold back.
      const state = states.get(g.consumer.id);
      // The stage first when mediasoup shares the estimate out, also when a camera is pinned to
      // the stage (its rank changes, its state need not).
      const rank = ranks.get(g.consumer.id);
      if (state && rank !== g.prioritized) {
        g.prioritized = rank;
        g.consumer.setPriority(rank === 'stage' ? 2 : 1).catch(() => undefined);
      }
      if (state === g.state) continue;
      const wasSuspended = g.state === 'suspended';
      g.state = state;
      changed = true;
      if (state === 'suspended') tell(v.peer, g.consumer, true);
      else if (wasSuspended) tell(v.peer, g.consumer, false); // bandwidth no longer holds it back
    }
    if (changed) this.#host.refresh(v.peer);
  }
}
