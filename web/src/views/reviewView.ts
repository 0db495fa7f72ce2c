// The review page (/review/:recordingId, specialists): a recording's tracks
// played together with the ECG, pleth and numerics drawn at the same instant
// and the alarms on a timeline (docs/RECORDING.md). One clock for everything:
// the hub's wall clock. A track's file time t was sent by the hub at
// firstPacket.wallMs + 1000 t (its sidecar), put back to its capture instant
// with its sender's RTCP clock (alignToSenders); a reading is drawn at its own
// time `t`. The lead video's displayed frame (requestVideoFrameCallback's
// mediaTime) sets the instant, so after a seek the waveform shows what the
// monitor showed when that frame went out.

import { takeToken } from '../auth';
import type { AlarmPriority, Reading, RecordingDetail, TrackSidecar } from '../contract';
import { t } from '../i18n';
import { h, setText } from '../ui/dom';
import { messageBox, pageHeader } from '../ui/header';
import { CSS_PX_PER_MM, PX_PER_S, drawGrid } from '../devices/waveform';

interface Chunk {
  t: number;
  rate: number;
  samples: (number | null)[];
}
interface AlarmSpan {
  key: string;
  text: string;
  priority: AlarmPriority;
  from: number;
  to: number | null;
}
interface ReviewPositions {
  seekedTo: number | null;
  targetWallMs: number | null;
  videoFrameWallMs: number | null;
  waveformWallMs: number | null;
  samplesDrawn: number;
  videos: number;
  leadProducerId: string | null;
  /** The hub-clock instant the lead video's file time 0 is put at. */
  leadZeroWallMs: number | null;
}

/** The test hook of the review page (test/recording/recording.test.ts reads it). */
export interface ReviewHook {
  ready: boolean;
  seek(seconds: number): Promise<void>;
  positions(): ReviewPositions;
}

declare global {
  interface Window {
    hoichanReview?: ReviewHook;
  }
}

const WAVES = [
  { code: 'MDC_ECG_ELEC_POTL_II', label: 'ecgII', color: '#22c55e', mmPerUnit: 10 },
  { code: 'MDC_PULS_OXIM_PLETH', label: 'pleth', color: '#38bdf8', mmPerUnit: undefined },
] as const;
const NUMERICS = [
  { code: 'MDC_ECG_HEART_RATE', label: 'hr' },
  { code: 'MDC_PULS_OXIM_SAT_O2', label: 'spo2' },
  { code: 'MDC_PULS_OXIM_PULS_RATE', label: 'pr' },
  { code: 'MDC_RESP_RATE', label: 'rr' },
] as const;

export function mountReviewView(root: HTMLElement, recordingId: string): void {
  document.body.dataset.view = 'review';
  const token = takeToken(`hoichan.token.review.${recordingId}`);
  const header = pageHeader(recordingId, t('review.title'));
  const message = messageBox();
  const main = h('main', { class: 'review' }, h('p', { class: 'message' }, t('review.loading')));
  root.replaceChildren(header.element, message.element, main);
  document.title = `${t('review.title')} · Hoichan`;
  const auth = { authorization: `Bearer ${token}` };
  void load().catch((err: Error) => {
    message.show(err.message === 'not_found' ? t('review.notFound') : `${t('state.error')}: ${err.message}`);
    header.state.dataset.state = 'error';
  });

  async function load(): Promise<void> {
    const res = await fetch(`/api/recordings/${encodeURIComponent(recordingId)}`, { headers: auth });
    if (!res.ok) throw new Error(res.status === 404 || res.status === 403 ? 'not_found' : `HTTP ${res.status}`);
    const detail = (await res.json()) as RecordingDetail;
    const fileUrl = (name: string) => `/api/recordings/${encodeURIComponent(recordingId)}/files/${encodeURIComponent(name)}`;
    // The files need the bearer token, which a media element cannot send: fetched whole into blobs.
    const blobOf = async (name: string) => {
      const r = await fetch(fileUrl(name), { headers: auth });
      if (!r.ok) throw new Error(`HTTP ${r.status} for ${name}`);
      return URL.createObjectURL(await r.blob());
    };
    const tracks = detail.tracks.filter((tr) => detail.sidecars[tr.producerId]?.firstPacket && detail.sidecars[tr.producerId]?.state === 'done');
    const loaded = await Promise.all(
      tracks.map(async (track) => {
        const sidecar = detail.sidecars[track.producerId]!;
        const el = track.kind === 'video' ? h('video', { playsinline: true, preload: 'auto' }) : h('audio', { preload: 'auto' });
        el.dataset.producerId = track.producerId;
        // A track that holds no playable media (a sender that left at once) is left out.
        const ready = new Promise<boolean>((resolve) => {
          el.addEventListener('loadedmetadata', () => resolve(true), { once: true });
          el.addEventListener('error', () => resolve(false), { once: true });
          setTimeout(() => resolve(el.readyState >= 1), 15_000);
        });
        el.src = await blobOf(track.file);
        return (await ready) ? { track, sidecar, el, zero: sidecar.firstPacket!.wallMs } : undefined;
      }),
    );
    const media = alignToSenders(loaded.filter((m): m is NonNullable<typeof m> => m !== undefined));
    const readingsText = await fetch(fileUrl(detail.readings), { headers: auth }).then((r) => (r.ok ? r.text() : ''));
    const { waves, numerics, alarms } = parseReadings(readingsText);

    const start = detail.startedAt;
    const end = detail.stoppedAt ?? Math.max(start, ...media.map((m) => m.sidecar.endedWallMs ?? m.zero));
    const videos = media.filter((m) => m.track.kind === 'video');
    // The instant follows the longest video.
    const lead = [...videos].sort((a, b) => (b.sidecar.endedWallMs ?? 0) - b.zero - ((a.sidecar.endedWallMs ?? 0) - a.zero))[0];

    // ---- layout ----
    const playButton = h('button', { type: 'button', id: 'review-play' }, t('review.play'));
    const clock = h('span', { class: 'review-clock' });
    const timeline = h('div', { class: 'review-timeline', id: 'review-timeline', role: 'slider', 'aria-label': t('review.alarms') });
    const cursor = h('div', { class: 'cursor' });
    timeline.append(cursor);
    for (const alarm of alarms) {
      const left = ((alarm.from - start) / (end - start)) * 100;
      const width = (((alarm.to ?? end) - alarm.from) / (end - start)) * 100;
      const bar = h('div', { class: 'alarm', title: `${alarm.text} (${t(`priority.${alarm.priority}`)})` });
      bar.dataset.priority = alarm.priority;
      bar.style.left = `${Math.max(0, left)}%`;
      bar.style.width = `${Math.max(0.3, width)}%`;
      timeline.append(bar);
    }
    const strips = WAVES.filter((w) => waves.has(w.code)).map((w) => ({ ...w, strip: new ReviewStrip(w.color, w.mmPerUnit), chunks: waves.get(w.code)! }));
    const numericEls = NUMERICS.filter((n) => numerics.has(n.code)).map((n) => ({ ...n, value: h('span', { class: 'value' }, '–'), list: numerics.get(n.code)! }));
    main.replaceChildren(
      h('p', {}, t('review.startedBy', { from: new Date(start).toLocaleString(), to: new Date(end).toLocaleTimeString() })),
      h('div', { class: 'review-videos' }, ...videos.map((m) => m.el)),
      ...media.filter((m) => m.track.kind === 'audio').map((m) => m.el),
      h('div', { class: 'review-controls' }, playButton, clock),
      timeline,
      h('section', { class: 'review-waves' }, ...strips.map((s) => h('div', {}, h('h3', {}, t(s.label)), s.strip.element))),
      ...(strips.length === 0 ? [h('p', {}, t('review.noReadings'))] : []),
      h('div', { class: 'review-numerics' }, ...numericEls.map((n) => h('div', {}, h('div', {}, t(n.label)), n.value))),
      h(
        'section',
        { class: 'review-downloads' },
        h('h3', {}, t('review.downloads')),
        ...tracks.map((tr) => downloadLink(tr.file, `${tr.kind} ${tr.source} (${tr.file})`)),
        downloadLink(detail.readings, t('review.readings')),
      ),
    );
    function downloadLink(name: string, label: string): HTMLElement {
      // A link cannot carry the bearer token either: fetched on click.
      return h('a', {
        href: '#',
        onclick: (event: Event) => {
          event.preventDefault();
          void blobOf(name).then((url) => {
            const a = h('a', { href: url, download: name });
            a.click();
            setTimeout(() => URL.revokeObjectURL(url), 10_000);
          });
        },
      }, label);
    }

    // ---- the one clock ----
    const positions: ReviewPositions = { seekedTo: null, targetWallMs: null, videoFrameWallMs: null, waveformWallMs: null, samplesDrawn: 0, videos: videos.length, leadProducerId: lead?.track.producerId ?? null, leadZeroWallMs: lead?.zero ?? null };
    const drawAt = (wallMs: number) => {
      cursor.style.left = `${Math.min(100, Math.max(0, ((wallMs - start) / (end - start)) * 100))}%`;
      setText(clock, `${((wallMs - start) / 1000).toFixed(2)} s · ${new Date(wallMs).toLocaleTimeString()}`);
      let lastSampleT: number | null = null;
      let drawn = 0;
      for (const s of strips) {
        const r = s.strip.draw(s.chunks, wallMs);
        drawn += r.samples;
        if (r.lastT !== null && (lastSampleT === null || r.lastT > lastSampleT)) lastSampleT = r.lastT;
      }
      for (const n of numericEls) {
        const latest = latestAt(n.list, wallMs);
        setText(n.value, latest === undefined || latest.value === null ? '–' : String(latest.value));
      }
      positions.waveformWallMs = lastSampleT;
      positions.samplesDrawn = drawn;
    };
    const mediaWall = (m: (typeof media)[number], mediaTime: number) => m.zero + mediaTime * 1000;
    /** Every element to the instant wallMs (before its file starts: at its start, paused). */
    const placeAll = (wallMs: number, except?: HTMLMediaElement) => {
      for (const m of media) {
        if (m.el === except) continue;
        const target = Math.max(0, (wallMs - m.zero) / 1000);
        if (Math.abs(m.el.currentTime - target) > (m.el.paused ? 0.001 : 0.15)) m.el.currentTime = target;
      }
    };
    // While playing, the lead's frames drive the waveform; others are kept within 150 ms.
    if (lead) {
      const onFrame = (_now: number, meta: VideoFrameCallbackMetadata) => {
        const wall = mediaWall(lead, meta.mediaTime);
        positions.videoFrameWallMs = wall;
        drawAt(wall);
        if (!lead.el.paused) placeAll(wall, lead.el);
        (lead.el as HTMLVideoElement).requestVideoFrameCallback(onFrame);
      };
      (lead.el as HTMLVideoElement).requestVideoFrameCallback(onFrame);
    }
    playButton.addEventListener('click', () => {
      const playing = lead ? !lead.el.paused : false;
      for (const m of media) void (playing ? m.el.pause() : m.el.play().catch(() => undefined));
      setText(playButton, t(playing ? 'review.play' : 'review.pause'));
    });
    const seek = async (seconds: number): Promise<void> => {
      const wall = start + seconds * 1000;
      positions.seekedTo = null;
      positions.targetWallMs = wall;
      positions.videoFrameWallMs = null;
      for (const m of media) m.el.pause();
      setText(playButton, t('review.play'));
      const seeked = media.map((m) => new Promise((resolve) => m.el.addEventListener('seeked', resolve, { once: true })));
      placeAll(wall);
      if (!lead) drawAt(wall);
      await Promise.race([Promise.all(seeked), new Promise((resolve) => setTimeout(resolve, 5000))]);
      positions.seekedTo = seconds;
    };
    timeline.addEventListener('click', (event: MouseEvent) => {
      const box = timeline.getBoundingClientRect();
      void seek((((event.clientX - box.left) / box.width) * (end - start)) / 1000);
    });
    drawAt(start);
    window.hoichanReview = { ready: true, seek, positions: () => ({ ...positions }) };
  }
}

/**
 * Where each file's time 0 goes on the hub's clock. A track's first packet
 * left the hub at firstPacket.wallMs, but a browser's audio and video leave it
 * after different send-path delays (0.2 s apart measured on a starved host).
 * Its RTCP sender reports put both on the browser's capture clock, so per
 * sender: capture time of the first packet + the smallest delay any of its
 * tracks showed (the sender's clock offset plus the network). Tracks without
 * a sender report keep firstPacket.wallMs.
 */
function alignToSenders<M extends { sidecar: TrackSidecar; zero: number }>(media: M[]): M[] {
  const capture = new Map<M, number>();
  const delay = new Map<string, number>();
  for (const m of media) {
    const c = captureMs(m.sidecar);
    if (c === undefined) continue;
    capture.set(m, c);
    const d = m.sidecar.firstPacket!.wallMs - c;
    delay.set(m.sidecar.peerId, Math.min(delay.get(m.sidecar.peerId) ?? Infinity, d));
  }
  return media.map((m) => {
    const c = capture.get(m);
    return c === undefined ? m : { ...m, zero: c + delay.get(m.sidecar.peerId)! };
  });
}

/** The capture time (sender's clock, ms) of a track's first packet, from its sender report on the recorded SSRC. */
function captureMs(s: TrackSidecar): number | undefined {
  const sr = s.senderReports.find((r) => r.ssrc === s.producerSsrc);
  const rtp = s.firstPacket?.producerRtpTimestamp;
  if (!sr || rtp === null || rtp === undefined) return undefined;
  // 32-bit RTP timestamps, the shorter way round (as src/recording/sdp.ts rtpDiff; the client imports no hub code).
  let d = (rtp - sr.rtpTimestamp) % 2 ** 32;
  if (d > 2 ** 31) d -= 2 ** 32;
  if (d < -(2 ** 31)) d += 2 ** 32;
  return sr.ntpMs + (1000 * d) / s.codec.clockRate;
}

/** Waveform chunks per code, numerics per code (time order), alarms paired into spans. */
function parseReadings(text: string): { waves: Map<string, Chunk[]>; numerics: Map<string, { t: number; value: number | null }[]>; alarms: AlarmSpan[] } {
  const waves = new Map<string, Chunk[]>();
  const numerics = new Map<string, { t: number; value: number | null }[]>();
  const open = new Map<string, AlarmSpan>();
  const alarms: AlarmSpan[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let entry: { event?: string; deviceId?: string; readings?: Reading[] };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue; // a torn last line (hub crash): the rest stands
    }
    if (entry.event !== 'deviceReadings' || !Array.isArray(entry.readings)) continue;
    for (const r of entry.readings) {
      if (r.kind === 'waveform') {
        const list = waves.get(r.code) ?? [];
        list.push({ t: r.t, rate: r.sampleRate, samples: r.samples });
        waves.set(r.code, list);
      } else if (r.kind === 'numeric') {
        const list = numerics.get(r.code) ?? [];
        list.push({ t: r.t, value: r.value });
        numerics.set(r.code, list);
      } else if (r.kind === 'alarm') {
        const key = `${entry.deviceId}|${r.alarmId ?? r.code}`;
        const current = open.get(key);
        if (r.active && !current) {
          const span: AlarmSpan = { key, text: r.text, priority: r.priority, from: r.t, to: null };
          open.set(key, span);
          alarms.push(span);
        } else if (!r.active && current) {
          current.to = r.t;
          open.delete(key);
        }
      }
    }
  }
  for (const list of waves.values()) list.sort((a, b) => a.t - b.t);
  for (const list of numerics.values()) list.sort((a, b) => a.t - b.t);
  return { waves, numerics, alarms };
}

function latestAt<T extends { t: number }>(list: T[], wallMs: number): T | undefined {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.t <= wallMs) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? list[lo - 1] : undefined;
}

/**
 * A still strip at the monitor's scale (25 mm/s, the live sweep's grid):
 * the seconds up to an instant, the newest sample at the right edge.
 */
class ReviewStrip {
  readonly element: HTMLElement;
  readonly #grid = h('canvas', { class: 'sweep-grid' });
  readonly #trace = h('canvas', { class: 'sweep-trace' });
  readonly #color: string;
  readonly #mmPerUnit: number | undefined;
  #size = '';

  constructor(color: string, mmPerUnit: number | undefined) {
    this.#color = color;
    this.#mmPerUnit = mmPerUnit;
    this.element = h('div', { class: 'sweep' }, this.#grid, this.#trace);
  }

  /** Draws the window ending at wallMs; returns how many samples and the time of the last one. */
  draw(chunks: Chunk[], wallMs: number): { samples: number; lastT: number | null } {
    const width = this.element.clientWidth;
    const height = this.element.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    const size = `${width}x${height}x${dpr}`;
    if (size !== this.#size) {
      this.#size = size;
      for (const c of [this.#grid, this.#trace]) {
        c.width = Math.round(width * dpr);
        c.height = Math.round(height * dpr);
      }
      drawGrid(this.#grid, dpr);
    }
    const ctx = this.#trace.getContext('2d');
    if (!ctx || width === 0) return { samples: 0, lastT: null };
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const from = wallMs - (width / PX_PER_S) * 1000;
    const points: { t: number; v: number | null }[] = [];
    for (const chunk of chunks) {
      const chunkEnd = chunk.t + (chunk.samples.length / chunk.rate) * 1000;
      if (chunkEnd < from || chunk.t > wallMs) continue;
      for (let i = 0; i < chunk.samples.length; i++) {
        const ts = chunk.t + (i / chunk.rate) * 1000;
        if (ts >= from && ts <= wallMs) points.push({ t: ts, v: chunk.samples[i]! });
      }
    }
    if (points.length === 0) return { samples: 0, lastT: null };
    let min = Infinity;
    let max = -Infinity;
    for (const p of points) {
      if (p.v === null) continue;
      min = Math.min(min, p.v);
      max = Math.max(max, p.v);
    }
    const y = (v: number) =>
      this.#mmPerUnit !== undefined ? height * 0.6 - v * this.#mmPerUnit * CSS_PX_PER_MM : height * 0.1 + (1 - (v - min) / (max - min || 1)) * height * 0.8;
    ctx.strokeStyle = this.#color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let pen = false;
    for (const p of points) {
      if (p.v === null) {
        pen = false;
        continue;
      }
      const x = width - ((wallMs - p.t) / 1000) * PX_PER_S;
      if (pen) ctx.lineTo(x, y(p.v));
      else ctx.moveTo(x, y(p.v));
      pen = true;
    }
    ctx.stroke();
    return { samples: points.length, lastT: points[points.length - 1]!.t };
  }
}
