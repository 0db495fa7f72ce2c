import type { types } from 'mediasoup';
import { createLogger, type Logger } from '../common/logger.js';
import { BandwidthPolicy, LEVELS, videoStates, type BandwidthPolicyOptions, type PolicyVideo, type VideoRank, type VideoState } from './bandwidthPolicy.js';
import type { ProducerSource, Role } from './events.js';
import type { Peer } from './Peer.js';

/** Who sends what a consumer receives: enough to rank it stage or thumbnail. */
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

interface Governed {
  consumer: types.Consumer;
  rank: VideoRank;
  /** Layers the viewer asked for with setConsumerLayers (undefined: the highest). */
  clientLayers: types.ConsumerLayers | undefined;
  /** The viewer called resumeConsumer: it wants media once the policy lets it flow. */
  clientResumed: boolean;
  state: VideoState | undefined;
}

interface Viewer {
  peer: Peer;
  transport: types.WebRtcTransport;
  policy: BandwidthPolicy;
  videos: Map<string, Governed>;
  audio: Set<string>;
  availableBps: number | undefined;
}

export interface BandwidthGovernorOptions {
  /** false: consumers pass through untouched (media.bandwidthPolicy off). */
  enabled?: boolean;
  /** How often each viewer's estimate is read (ms). */
  intervalMs?: number;
  policy?: Partial<BandwidthPolicyOptions>;
  log?: Logger;
}

/** Tells one viewer its video was suspended or resumed (peer events `videoSuspended` / `videoResumed`). */
function tell(peer: Peer, consumer: types.Consumer, suspended: boolean): void {
  if (suspended) peer.notify('videoSuspended', { consumerId: consumer.id, producerId: consumer.producerId, reason: 'bandwidth' });
  else peer.notify('videoResumed', { consumerId: consumer.id, producerId: consumer.producerId });
}

/**
 * Applies the BandwidthPolicy to a conference's viewers: once a second per
 * connected recv transport it reads the available outgoing bitrate and the
 * consumers' scores, and caps layers, pauses and resumes video consumers on
 * the hub. Audio consumers are never touched: they are what the ladder
 * protects. The conference hands it every consumer and routes the viewer's
 * own resumeConsumer / setConsumerLayers through it, so a viewer's wish and
 * the policy's cap combine (the lower wins) instead of undoing each other.
 */
export class BandwidthGovernor {
  readonly #viewers = new Map<string, Viewer>();
  readonly #options: BandwidthGovernorOptions;
  readonly #log: Logger;
  readonly #timer: NodeJS.Timeout;
  #sampling = false;

  constructor(options: BandwidthGovernorOptions = {}) {
    this.#options = options;
    this.#log = options.log ?? createLogger('bandwidth');
    this.#timer = setInterval(() => void this.#sampleAll(), options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** A consumer the conference created for `peer` on `transport`. */
  add(peer: Peer, transport: types.WebRtcTransport, consumer: types.Consumer, from: ConsumedFrom): void {
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
    const entry: Governed = { consumer, rank: defaultVideoRank(from), clientLayers: undefined, clientResumed: false, state: undefined };
    v.videos.set(consumer.id, entry);
    consumer.observer.once('close', () => v.videos.delete(consumer.id));
    // Layers now (the consumer is still paused): a new viewer starts low until its link is measured.
    void this.#apply(v);
  }

  /** The viewer's resumeConsumer: resumes now unless the policy holds the video suspended (then says so). */
  async resume(consumer: types.Consumer): Promise<void> {
    const entry = this.#find(consumer.id);
    if (!entry || entry.governed.state !== 'suspended') {
      if (entry) entry.governed.clientResumed = true;
      await consumer.resume();
      return;
    }
    entry.governed.clientResumed = true;
    tell(entry.viewer.peer, consumer, true);
  }

  /** The viewer's setConsumerLayers: kept as its wish, applied under the policy's cap. */
  async setLayers(consumer: types.Consumer, layers: types.ConsumerLayers): Promise<void> {
    const entry = this.#find(consumer.id);
    if (!entry) {
      await consumer.setPreferredLayers(layers);
      return;
    }
    entry.governed.clientLayers = layers;
    await consumer.setPreferredLayers(this.#layersFor(entry.governed, entry.governed.state ?? 'full'));
  }

  /** The ladder level of a peer's recv transport(s), for ops and tests: the highest one. */
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

  #layersFor(g: Governed, state: VideoState): types.ConsumerLayers {
    const wish = g.clientLayers ?? { spatialLayer: 3 };
    if (state !== 'low') return wish;
    return { ...wish, spatialLayer: 0 };
  }

  /** Videos that could flow: resumed by the viewer, their producer not paused. */
  #policyVideos(v: Viewer): PolicyVideo[] {
    const live = [...v.videos.values()].filter((g) => !g.consumer.closed && !g.consumer.producerPaused && g.clientResumed);
    const hasStage = live.some((g) => g.rank === 'stage');
    return live.map((g, i) => ({
      id: g.consumer.id,
      rank: hasStage || i > 0 ? g.rank : 'stage',
      layered: g.consumer.type === 'simulcast' || g.consumer.type === 'svc',
      score: g.consumer.paused ? undefined : g.consumer.score.score,
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
    if (!step) return;
    this.#log.info(
      { peerId: v.peer.id, transportId: v.transport.id, from: LEVELS[step.from], to: LEVELS[step.to], reason: step.reason, availableBps: v.availableBps, holdDownMs: v.policy.holdDownMs },
      'viewer bandwidth level changed',
    );
    await this.#apply(v);
  }

  /** Brings every video of the viewer to the state its level gives it. */
  async #apply(v: Viewer): Promise<void> {
    const policyVideos = this.#policyVideos(v);
    const states = videoStates(v.policy.level, policyVideos);
    const ranks = new Map(policyVideos.map((p) => [p.id, p.rank]));
    for (const g of v.videos.values()) {
      if (g.consumer.closed) continue;
      // A video the viewer has not resumed yet (or whose sender paused) gets its level's state as if it flowed.
      const state = states.get(g.consumer.id) ?? videoStates(v.policy.level, [{ id: g.consumer.id, rank: ranks.get(g.consumer.id) ?? g.rank, layered: true }]).get(g.consumer.id)!;
      const previous = g.state;
      if (state === previous) continue;
      g.state = state;
      try {
        if (g.consumer.type === 'simulcast' || g.consumer.type === 'svc') await g.consumer.setPreferredLayers(this.#layersFor(g, state));
        await g.consumer.setPriority(g.rank === 'stage' ? 2 : 1);
        if (!g.clientResumed) continue;
        if (state === 'suspended') {
          await g.consumer.pause();
          tell(v.peer, g.consumer, true);
        } else if (previous === 'suspended') {
          await g.consumer.resume();
          tell(v.peer, g.consumer, false);
        }
      } catch {
        // The consumer closed meanwhile: nothing to apply.
      }
    }
  }
}
