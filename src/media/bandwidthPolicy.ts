/**
 * What one viewer's downlink can carry, decided from the hub's own estimate
 * of it (the recv transport's available outgoing bitrate, transport-cc) and
 * the consumers' scores. Pure decisions on samples passed in; the
 * BandwidthGovernor (bandwidthGovernor.ts) reads mediasoup and applies them.
 *
 * Priorities on a thin link: device readings (signaling, not here) and audio
 * first, then the stage video at its lowest layer, then everything else. The
 * ladder, one level per step:
 *
 *   0 full         every video at the layers the viewer asked for
 *   1 thumbs-low   thumbnails capped at the lowest simulcast layer
 *   2 all-low      the stage capped too
 *   3 stage-only   thumbnails suspended (paused on the hub)
 *   4 audio-only   every video suspended
 *
 * Within the estimate mediasoup itself picks each simulcast consumer's layers,
 * higher priority first (the governor gives the stage 2, thumbnails 1), and
 * probes (RTP padding) before it climbs: so at levels 0-2 a video needs only
 * its lowest layer to fit, and the caps of levels 1-2 are for loss (a video's
 * score), where the estimate is too optimistic. Levels 3-4 are what mediasoup
 * does not do: stop a video the link cannot carry at all, and say so.
 *
 * Down: as soon as two samples in a row say the current level does not fit
 * (or a video's score collapses). Up: one level at a time, when the estimate
 * has carried the next level for `upAfterMs`, and not before `holdDownMs`
 * after the last step down. A step down soon after a step up doubles the
 * hold-down (up to `maxHoldDownMs`), so a link at the edge does not flap.
 * A suspended video sends nothing, so the estimate cannot grow by itself:
 * after the hold-down the ladder tries the next level up anyway (a probe by
 * doing); if it does not fit, it comes back down and waits twice as long.
 */

export type VideoRank = 'stage' | 'thumbnail';
export type VideoState = 'full' | 'low' | 'suspended';

export const LEVELS = ['full', 'thumbs-low', 'all-low', 'stage-only', 'audio-only'] as const;
export type Level = 0 | 1 | 2 | 3 | 4;

export interface PolicyVideo {
  id: string;
  rank: VideoRank;
  /** Has layers to drop to (a simulcast or SVC producer). */
  layered: boolean;
  /** mediasoup consumer score 0-10 (packet loss toward the viewer); undefined when not sending. */
  score?: number | undefined;
}

export interface PolicySample {
  nowMs: number;
  /** The transport's available outgoing bitrate (bits/s); undefined before the first estimate. */
  availableBps: number | undefined;
  audioCount: number;
  videos: PolicyVideo[];
}

export interface BandwidthPolicyOptions {
  /** One audio consumer on the wire: opus ~32 kb/s plus 50 packets/s of IP/UDP/SRTP headers. */
  audioBps: number;
  /**
   * The least a flowing simulcast video costs: mediasoup drops temporal layers
   * too, so the senders' 80 kb/s, 15 fps layer can go at 1/4 of its frame rate
   * (~30-40 kb/s) before nothing is left; plus headers and retransmissions.
   */
  lowVideoBps: number;
  /** Share of the estimate planned for media (the rest: RTCP, probing, readings on the same link). */
  headroom: number;
  upAfterMs: number;
  holdDownMs: number;
  maxHoldDownMs: number;
  /** A video whose score is at or below this (heavy loss toward the viewer) counts as not fitting. */
  badScore: number;
}

export const DEFAULT_POLICY: BandwidthPolicyOptions = {
  audioBps: 50_000,
  lowVideoBps: 60_000,
  headroom: 0.85,
  upAfterMs: 3_000,
  holdDownMs: 8_000,
  maxHoldDownMs: 60_000,
  badScore: 3,
};

/** The state of each video at a level. */
export function videoStates(level: Level, videos: readonly PolicyVideo[]): Map<string, VideoState> {
  const states = new Map<string, VideoState>();
  for (const v of videos) {
    const thumb = v.rank === 'thumbnail';
    let state: VideoState = 'full';
    if (level >= 4 || (level >= 3 && thumb)) state = 'suspended';
    else if (level >= 2 || (level >= 1 && thumb)) state = 'low';
    states.set(v.id, state);
  }
  return states;
}

/** Bits/s a level needs for this viewer. */
export function levelNeedBps(level: Level, sample: Pick<PolicySample, 'audioCount' | 'videos'>, options: BandwidthPolicyOptions): number {
  let need = sample.audioCount * options.audioBps;
  for (const state of videoStates(level, sample.videos).values()) {
    if (state !== 'suspended') need += options.lowVideoBps;
  }
  return need;
}

export interface PolicyStep {
  from: Level;
  to: Level;
  /** 'estimate': the bitrate estimate; 'score': loss toward the viewer; 'probe': a try upward without evidence. */
  reason: 'estimate' | 'score' | 'probe';
}

export class BandwidthPolicy {
  readonly options: BandwidthPolicyOptions;
  #level: Level;
  #overCount = 0;
  /** Since when the estimate has carried the next level up. */
  #fitsSinceMs: number | undefined;
  #lastDownMs = -Infinity;
  #lastUpMs = -Infinity;
  #holdDownMs: number;

  /** Starts at `initial` (full: the hub's initialAvailableOutgoingBitrate, 300 kb/s, keeps the first seconds from flooding a thin link). */
  constructor(options: Partial<BandwidthPolicyOptions> = {}, initial: Level = 0) {
    this.options = { ...DEFAULT_POLICY, ...options };
    this.#level = initial;
    this.#holdDownMs = this.options.holdDownMs;
  }

  get level(): Level {
    return this.#level;
  }

  get holdDownMs(): number {
    return this.#holdDownMs;
  }

  /** One sample (about one per second); returns the step taken, if any. */
  update(sample: PolicySample): PolicyStep | undefined {
    const { nowMs } = sample;
    const o = this.options;
    if (sample.availableBps === undefined) return undefined;
    const budget = sample.availableBps * o.headroom;
    const hasVideo = sample.videos.length > 0;
    const states = videoStates(this.#level, sample.videos);
    const badScore = sample.videos.some((v) => states.get(v.id) !== 'suspended' && v.score !== undefined && v.score <= o.badScore);
    const over = hasVideo && (levelNeedBps(this.#level, sample, o) > budget || badScore);
    // Right after a step up the estimate lags what now flows: give it upAfterMs (loss still counts).
    const settling = nowMs - this.#lastUpMs < o.upAfterMs && !badScore;
    if (over && this.#level < 4 && !settling) {
      this.#fitsSinceMs = undefined;
      if (++this.#overCount < 2) return undefined;
      this.#overCount = 0;
      // A fall soon after a climb: the level above does not hold; wait longer next time.
      if (nowMs - this.#lastUpMs < this.#holdDownMs) this.#holdDownMs = Math.min(o.maxHoldDownMs, this.#holdDownMs * 2);
      const from = this.#level;
      // Straight to the highest level that fits, at least one down.
      let to = (from + 1) as Level;
      while (to < 4 && levelNeedBps(to, sample, o) > budget) to = (to + 1) as Level;
      this.#level = to;
      this.#lastDownMs = nowMs;
      return { from, to, reason: badScore && levelNeedBps(from, sample, o) <= budget ? 'score' : 'estimate' };
    }
    if (over) return undefined;
    this.#overCount = 0;
    if (this.#level === 0 || !hasVideo) return undefined;
    const next = (this.#level - 1) as Level;
    const fits = levelNeedBps(next, sample, o) <= budget && !badScore;
    if (fits) this.#fitsSinceMs ??= nowMs;
    else this.#fitsSinceMs = undefined;
    if (nowMs - this.#lastDownMs < this.#holdDownMs) return undefined;
    const from = this.#level;
    if (fits && nowMs - this.#fitsSinceMs! >= o.upAfterMs) {
      this.#step(next, nowMs);
      return { from, to: next, reason: 'estimate' };
    }
    // Suspended video sends nothing, so the estimate has no way to grow: try.
    if (!fits && from >= 3 && nowMs - this.#lastUpMs >= this.#holdDownMs) {
      this.#step(next, nowMs);
      return { from, to: next, reason: 'probe' };
    }
    // A settled link with a long quiet spell earns back the shorter hold-down.
    if (nowMs - this.#lastDownMs > 4 * this.#holdDownMs) this.#holdDownMs = Math.max(o.holdDownMs, this.#holdDownMs / 2);
    return undefined;
  }

  #step(to: Level, nowMs: number): void {
    this.#level = to;
    this.#lastUpMs = nowMs;
    this.#fitsSinceMs = undefined;
  }
}
