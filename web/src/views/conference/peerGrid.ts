import type { PeerSummary, ProducerSource } from '../../contract';
import { t, type MessageKey } from '../../i18n';
import type { NetworkQuality } from '../../media/networkQuality';
import type { RemoteConsumer } from '../../media/session';
import { watchFirstFrame } from '../../telemetry';
import { h, setText, toggleClass } from '../../ui/dom';

const STAGE_SOURCES: ReadonlySet<ProducerSource> = new Set(['ultrasound', 'device-video', 'screen']);

interface PeerTile {
  el: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  quality: HTMLElement;
  audio: HTMLElement;
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
 * ultrasound, device video or shared screen.
 */
export class PeerGrid {
  readonly element: HTMLElement;
  readonly #tiles = new Map<string, PeerTile>();
  readonly #stage = new Map<string, { el: HTMLElement; peerId: string }>();
  #speaker = '';

  constructor() {
    this.element = h('section', { id: 'grid', class: 'grid', 'aria-label': 'Participants' });
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
      const el = h(
        'div',
        { id: `peer-${peer.peerId}`, class: self ? 'tile self' : 'tile', 'data-role': peer.role, 'data-peer-id': peer.peerId },
        h('span', { class: 'placeholder', 'aria-hidden': 'true' }, initials(peer.displayName)),
        video,
        label,
        quality,
        audio,
      );
      tile = { el, video, label, quality, audio };
      this.#tiles.set(peer.peerId, tile);
      // Self first, then sites (the patient), then specialists.
      if (self) this.element.prepend(el);
      else this.element.append(el);
    }
    setText(tile.label, `${peer.displayName} · ${roleLabel(peer.role)}${self ? ` (${t('you')})` : ''}`);
    this.#placeBesideStage();
    return tile;
  }

  removePeer(peerId: string): void {
    this.#tiles.get(peerId)?.el.remove();
    this.#tiles.delete(peerId);
    for (const [id, item] of this.#stage) if (item.peerId === peerId) this.#removeStage(id);
  }

  clear(): void {
    for (const peerId of [...this.#tiles.keys()]) this.removePeer(peerId);
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
      return;
    }
    if (STAGE_SOURCES.has(info.source)) {
      this.#addStage(consumer.id, info.peerId, info.source, consumer.track);
      return;
    }
    const tile = this.#tiles.get(info.peerId);
    if (!tile) return;
    tile.video.srcObject = new MediaStream([consumer.track]);
    tile.el.dataset.consumerId = consumer.id;
    watchFirstFrame(tile.video);
    this.#markVideo(tile);
  }

  removeConsumer({ consumer, info }: RemoteConsumer): void {
    this.element.querySelector(`audio[data-consumer-id="${consumer.id}"]`)?.remove();
    if (this.#stage.has(consumer.id)) return this.#removeStage(consumer.id);
    const tile = this.#tiles.get(info.peerId);
    if (tile && tile.el.dataset.consumerId === consumer.id) {
      tile.video.srcObject = null;
      delete tile.el.dataset.consumerId;
      this.#markVideo(tile);
    }
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

  #markVideo(tile: PeerTile): void {
    toggleClass(tile.el, 'no-video', !tile.video.srcObject);
    this.#placeBesideStage();
  }

  #addStage(consumerId: string, peerId: string, source: ProducerSource, track: MediaStreamTrack): void {
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
    this.#stage.set(consumerId, { el, peerId });
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
