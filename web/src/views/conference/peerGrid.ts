import type { PeerSummary, ProducerSource } from '../../contract';
import { t, type MessageKey } from '../../i18n';
import type { NetworkQuality } from '../../media/networkQuality';
import type { RemoteConsumer, VideoChoice, VideoPreferences } from '../../media/session';
import { watchFirstFrame } from '../../telemetry';
import { h, setText, toggleClass } from '../../ui/dom';

const STAGE_SOURCES: ReadonlySet<ProducerSource> = new Set(['ultrasound', 'device-video', 'screen']);
// The hub's bounds for setVideoPreferences (src/media/lastN.ts; docs/PROTOCOL.md).
const MAX_ON_STAGE = 16;
const MAX_THUMBNAILS = 25;

interface PeerTile {
  el: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  quality: HTMLElement;
  audio: HTMLElement;
  /** Remote tiles of a specialist's page: pins this peer's camera to the stage. */
  pin: HTMLButtonElement | undefined;
  /** The producer of the camera this tile shows (remote tiles). */
  cameraProducerId: string | undefined;
  /** What the tile honestly is when it shows no live video: paused for bandwidth, reconnecting, audio only. */
  state: HTMLElement;
}

type TileState = '' | 'bandwidth' | 'reconnecting' | 'audioOnly';

export interface PeerGridOptions {
  /** Pin buttons on remote tiles (a specialist puts any site's camera on the stage). */
  canPin: boolean;
  /** What the grid shows changed (tiles scrolled into or out of view, pin, stage video): see videoPreferences(). */
  onViewChange: () => void;
}

function roleLabel(role: string): string {
  return ['specialist', 'site', 'engineer'].includes(role) ? t(`role.${role}` as MessageKey) : role;
}

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join('');
}

/**
 * The conference's videos: one tile per peer (camera, name, role, network
 * badge, speaking outline) and, large beside the patient camera, any
 * ultrasound, device video or shared screen, or the camera a specialist pinned.
 *
 * Last-N (docs/WEB.md): the grid says what it shows (videoPreferences(): the
 * stage videos and the pinned camera, and how many remote camera tiles are in
 * view), and shows the placeholder on tiles whose video the hub does not
 * forward, rather than their last frame.
 */
export class PeerGrid {
  readonly element: HTMLElement;
  readonly #tiles = new Map<string, PeerTile>();
  readonly #stage = new Map<string, { el: HTMLElement; peerId: string; producerId: string }>();
  readonly #options: PeerGridOptions;
  /** Remote tiles at least partly on screen: the viewport's and the scrolled media column's. */
  readonly #inView = new Set<string>();
  readonly #observer: IntersectionObserver | undefined;
  #pinned = '';
  #clearing = false;
  #forwarded: ReadonlySet<string> | undefined;
  #speaker = '';
  /** Video consumers the hub holds back for bandwidth (videoSuspended, docs/LINKS.md). */
  readonly #suspended = new Set<string>();
  #reconnecting = false;

  constructor(options: PeerGridOptions = { canPin: false, onViewChange: () => undefined }) {
    this.#options = options;
    this.element = h('section', { id: 'grid', class: 'grid', 'aria-label': 'Participants' });
    // Root: the viewport, which also clips by the scrolling media column; a
    // collapsed tile (display: none) never intersects.
    this.#observer =
      typeof IntersectionObserver === 'undefined'
        ? undefined
        : new IntersectionObserver((entries) => {
            for (const entry of entries) {
              const peerId = (entry.target as HTMLElement).dataset.peerId ?? '';
              if (entry.isIntersecting && entry.intersectionRatio > 0) this.#inView.add(peerId);
              else this.#inView.delete(peerId);
            }
            this.#options.onViewChange();
          });
  }

  /** Adds or updates the tile of a peer; self tiles show the local preview. */
  upsertPeer(peer: PeerSummary, self = false): PeerTile {
    let tile = this.#tiles.get(peer.peerId);
    if (!tile) {
      const video = h('video', { autoplay: true, playsinline: true });
      video.muted = true; // audio plays through its own element
      const label = h('span', { class: 'label' });
      const quality = h('span', { class: 'quality', 'data-level': 'none' });
      const audio = h('span', { class: 'audio-sinks', hidden: true });
      const state = h('span', { class: 'tile-state', 'data-state': '', role: 'status' });
      const el = h(
        'div',
        { id: `peer-${peer.peerId}`, class: self ? 'tile self' : 'tile', 'data-role': peer.role, 'data-peer-id': peer.peerId },
        h('span', { class: 'placeholder', 'aria-hidden': 'true' }, initials(peer.displayName)),
        video,
        label,
        quality,
        audio,
        state,
      );
      const pin = self || !this.#options.canPin ? undefined : h('button', { type: 'button', class: 'pin', 'aria-pressed': 'false', hidden: true, onclick: () => this.togglePin(peer.peerId) });
      if (pin) el.append(pin);
      toggleClass(el, 'pinned', !self && peer.peerId === this.#pinned);
      tile = { el, video, label, quality, audio, pin, cameraProducerId: undefined, state };
      this.#tiles.set(peer.peerId, tile);
      if (!self) this.#observer?.observe(el);
      // Self first, then sites (the patient), then specialists.
      if (self) this.element.prepend(el);
      else this.element.append(el);
    }
    setText(tile.label, `${peer.displayName} · ${roleLabel(peer.role)}${self ? ` (${t('you')})` : ''}`);
    tile.el.dataset.name = peer.displayName;
    this.#labelPin(tile);
    this.#placeBesideStage();
    return tile;
  }

  removePeer(peerId: string): void {
    const tile = this.#tiles.get(peerId);
    if (tile) this.#observer?.unobserve(tile.el);
    tile?.el.remove();
    this.#tiles.delete(peerId);
    this.#inView.delete(peerId);
    if (this.#pinned === peerId && !this.#clearing) this.#pinned = '';
    for (const [id, item] of this.#stage) if (item.peerId === peerId) this.#removeStage(id);
    this.#options.onViewChange();
  }

  /** Every tile gone (a rejoin draws them again): the pin stays, for the same peer coming back. */
  clear(): void {
    this.#clearing = true;
    for (const peerId of [...this.#tiles.keys()]) this.removePeer(peerId);
    this.#clearing = false;
  }

  setLocalStream(peerId: string, stream: MediaStream | undefined): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.video.srcObject = stream ?? null;
    this.#markVideo(tile);
  }

  setLocalVideoOff(peerId: string, off: boolean): void {
    const tile = this.#tiles.get(peerId);
    if (tile) toggleClass(tile.el, 'video-off', off);
  }

  addConsumer({ consumer, info }: RemoteConsumer): void {
    if (consumer.kind === 'audio') {
      const tile = this.#tiles.get(info.peerId);
      const audio = h('audio', { autoplay: true, 'data-consumer-id': consumer.id });
      audio.srcObject = new MediaStream([consumer.track]);
      (tile?.audio ?? this.element).append(audio);
      if (tile) this.#markVideo(tile);
      return;
    }
    if (STAGE_SOURCES.has(info.source)) {
      this.#addStage(consumer.id, info.peerId, info.producerId, info.source, consumer.track);
      this.#options.onViewChange();
      return;
    }
    const tile = this.#tiles.get(info.peerId);
    if (!tile) return;
    tile.video.srcObject = new MediaStream([consumer.track]);
    tile.el.dataset.consumerId = consumer.id;
    tile.cameraProducerId = info.producerId;
    // A track is muted until its first packet: the placeholder, not black.
    // Chromium does not mute it again when the hub pauses the consumer (seen
    // in test/e2e/lastN.test.ts: still unmuted seconds later), so the hub's
    // reply (setVideoChoice) is what marks a paused camera; these events
    // cover the start and browsers that do mute.
    const muted = () => toggleClass(tile.el, 'track-muted', consumer.track.muted && tile.el.dataset.consumerId === consumer.id);
    consumer.track.addEventListener('mute', muted);
    consumer.track.addEventListener('unmute', muted);
    muted();
    watchFirstFrame(tile.video);
    this.#markVideo(tile);
    this.#markForwarded(tile);
    this.#options.onViewChange();
  }

  removeConsumer({ consumer, info }: RemoteConsumer): void {
    this.element.querySelector(`audio[data-consumer-id="${consumer.id}"]`)?.remove();
    this.#suspended.delete(consumer.id);
    if (this.#stage.has(consumer.id)) {
      this.#removeStage(consumer.id);
      this.#options.onViewChange();
      return;
    }
    const tile = this.#tiles.get(info.peerId);
    if (tile && tile.el.dataset.consumerId === consumer.id) {
      tile.video.srcObject = null;
      delete tile.el.dataset.consumerId;
      tile.cameraProducerId = undefined;
      toggleClass(tile.el, 'track-muted', false);
      this.#markVideo(tile);
      this.#markForwarded(tile);
      this.#options.onViewChange();
    }
  }

  // ---- last-N: what this page shows, and what the hub forwards ----

  /** Puts a peer's camera on the stage (large), or takes it back into the grid; one pin at a time. */
  togglePin(peerId: string): void {
    const previous = this.#pinned;
    this.#pinned = previous === peerId ? '' : peerId;
    for (const id of [previous, this.#pinned]) {
      const tile = this.#tiles.get(id);
      if (!tile) continue;
      toggleClass(tile.el, 'pinned', id === this.#pinned);
      this.#labelPin(tile);
    }
    // The stage is the top of the grid: a pin pressed in a scrolled grid must not put the camera out of sight.
    this.#tiles.get(this.#pinned)?.el.scrollIntoView({ block: 'nearest' });
    this.#options.onViewChange();
  }

  /**
   * The contract's setVideoPreferences: on stage the stage videos and the
   * pinned camera; thumbnails the remote camera tiles in view (the pinned one
   * is on stage, not a thumbnail).
   */
  videoPreferences(): VideoPreferences {
    const onStage = [...this.#stage.values()].map((s) => s.producerId);
    const pinned = this.#tiles.get(this.#pinned)?.cameraProducerId;
    if (pinned) onStage.unshift(pinned);
    let thumbnails = 0;
    for (const peerId of this.#inView) {
      const tile = this.#tiles.get(peerId);
      if (tile?.cameraProducerId && peerId !== this.#pinned) thumbnails++;
    }
    return { onStage: onStage.slice(0, MAX_ON_STAGE), thumbnails: Math.min(thumbnails, MAX_THUMBNAILS) };
  }

  /** The hub's reply: cameras outside it are paused on the hub and show their placeholder, after those it forwards. */
  setVideoChoice(choice: VideoChoice): void {
    this.#forwarded = new Set([...choice.stage, ...choice.thumbnails]);
    for (const tile of this.#tiles.values()) this.#markForwarded(tile);
  }

  #markForwarded(tile: PeerTile): void {
    const off = !!tile.cameraProducerId && !!this.#forwarded && !this.#forwarded.has(tile.cameraProducerId);
    toggleClass(tile.el, 'lastn-paused', off);
  }

  #labelPin(tile: PeerTile): void {
    if (!tile.pin) return;
    const pinned = tile.el.dataset.peerId === this.#pinned;
    const name = tile.el.dataset.name ?? '';
    tile.pin.setAttribute('aria-pressed', String(pinned));
    tile.pin.setAttribute('aria-label', t(pinned ? 'unpinCamera' : 'pinCamera', { name }));
    tile.pin.title = tile.pin.getAttribute('aria-label') ?? '';
    setText(tile.pin, '📌');
  }

  setSpeaker(peerId: string): void {
    this.#speaker = peerId;
    for (const [id, tile] of this.#tiles) toggleClass(tile.el, 'speaking', id === peerId);
  }

  get speaker(): string {
    return this.#speaker;
  }

  setQuality(peerId: string, q: NetworkQuality): void {
    const tile = this.#tiles.get(peerId);
    if (!tile) return;
    tile.quality.dataset.level = q.level;
    const rtt = q.rttMs === undefined ? '' : ` · ${Math.round(q.rttMs)} ms`;
    const text = q.level === 'none' ? t('quality.none') : `${Math.round(q.kbps)} kb/s · ${q.lossPercent.toFixed(1)}%${rtt}`;
    setText(tile.quality, text);
    tile.quality.title = `${t(`quality.${q.level}`)}: ${text}`;
  }

  /** The hub paused (or resumed) a video for bandwidth: its tile says so instead of freezing silently. */
  setSuspended(consumerId: string, suspended: boolean): void {
    if (suspended) this.#suspended.add(consumerId);
    else this.#suspended.delete(consumerId);
    const stage = this.#stage.get(consumerId);
    if (stage) toggleClass(stage.el, 'suspended', suspended);
    for (const tile of this.#tiles.values()) this.#markVideo(tile);
  }

  /** While the connection recovers, every remote tile says so. */
  setReconnecting(on: boolean): void {
    this.#reconnecting = on;
    for (const tile of this.#tiles.values()) this.#markVideo(tile);
  }

  /** Tile states as drawn, for tests: peerId -> state ('' when live video). */
  tileStates(): Record<string, string> {
    return Object.fromEntries([...this.#tiles].map(([id, tile]) => [id, tile.state.dataset.state ?? '']));
  }

  #markVideo(tile: PeerTile): void {
    const self = tile.el.classList.contains('self');
    const consumerId = tile.el.dataset.consumerId;
    const suspended = consumerId !== undefined && this.#suspended.has(consumerId);
    toggleClass(tile.el, 'no-video', !tile.video.srcObject || suspended);
    let state: TileState = '';
    if (!self && this.#reconnecting) state = 'reconnecting';
    else if (suspended) state = 'bandwidth';
    else if (!self && !tile.video.srcObject && tile.audio.childElementCount > 0) state = 'audioOnly';
    if (tile.state.dataset.state !== state) {
      tile.state.dataset.state = state;
      setText(tile.state, state ? t(`tile.${state}`) : '');
    }
    if (tile.pin) tile.pin.hidden = !tile.cameraProducerId;
    this.#placeBesideStage();
  }

  #addStage(consumerId: string, peerId: string, producerId: string, source: ProducerSource, track: MediaStreamTrack): void {
    const video = h('video', { autoplay: true, playsinline: true });
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    watchFirstFrame(video);
    const owner = this.#tiles.get(peerId)?.label.textContent ?? '';
    const el = h(
      'div',
      { class: 'stage-video', 'data-source': source, 'data-consumer-id': consumerId },
      video,
      h('span', { class: 'label' }, `${t(source as MessageKey)} · ${owner.split(' · ')[0]}`),
    );
    this.#stage.set(consumerId, { el, peerId, producerId });
    this.element.prepend(el);
    this.#placeBesideStage();
  }

  #removeStage(consumerId: string): void {
    this.#stage.get(consumerId)?.el.remove();
    this.#stage.delete(consumerId);
    this.#placeBesideStage();
  }

  /**
   * The camera of whoever sends stage video sits right beside it (the patient
   * camera). A sender with no camera at all (an ultrasound ingest) needs no
   * empty tile: its stage video already carries its name.
   */
  #placeBesideStage(): void {
    const owners = new Set([...this.#stage.values()].map((s) => s.peerId));
    toggleClass(this.element, 'has-stage', owners.size > 0);
    for (const [peerId, tile] of this.#tiles) {
      toggleClass(tile.el, 'beside-stage', owners.has(peerId));
      toggleClass(tile.el, 'stage-only', owners.has(peerId) && !tile.video.srcObject && !tile.el.classList.contains('self'));
    }
  }
}
