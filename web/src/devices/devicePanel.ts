import type { DeviceInfo, Reading } from '../contract';
import { deviceTypeLabel, t } from '../i18n';
import { h, setText, toggleClass } from '../ui/dom';
import { NIBP_CODES, NIBP_COLOR, NUMERIC_SLOTS, displayUnit, shortCodeName, slotOf, waveformRank, waveformStyle } from './codes';
import type { AlarmSource, EndedAlarm } from './alarmModel';
import { DeviceModel, NIBP_STALE_AFTER_MS, STALE_AFTER_MS, type ShownAlarm, type ShownNumeric } from './deviceModel';
import { SWEEP_MM_PER_S, WaveformSweep } from './waveform';

interface Tile {
  el: HTMLElement;
  value: HTMLElement;
  sub: HTMLElement;
  unit: HTMLElement;
  age: HTMLElement;
}

interface Wave {
  el: HTMLElement;
  sweep: WaveformSweep;
  lastLiveAt: number;
}

/** Display order of the tiles; codes without a slot follow. */
const TILE_ORDER = ['hr', 'spo2', 'pr', 'nibp', 'rr', 'temp'];

export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? t('secondsAgo', { n: s }) : t('minutesAgo', { n: Math.floor(s / 60) });
}

/** Local wall-clock time as HH:MM:SS (what a clinician compares with the bedside monitor's clock). */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** An alarm's source parameter as on the monitor: "SpO2 93 %". */
function formatSource(source: AlarmSource | undefined): string {
  if (!source) return '';
  const slot = slotOf(source.code);
  const label = slot ? t(NUMERIC_SLOTS.find((s) => s.id === slot)?.label ?? 'nibp') : shortCodeName(source.code);
  const decimals = source.value !== null && !Number.isInteger(source.value) ? 1 : 0;
  return [label, formatValue(source.value, decimals), displayUnit(source.unit, slot)].filter(Boolean).join(' ');
}

function formatValue(value: number | null | undefined, decimals: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '---' : value.toFixed(decimals);
}

/**
 * One device as a bedside monitor would show it: waveforms sweeping at 25 mm/s,
 * numerics with units and age, a stale state after 5 s without data, and the
 * active alarms by priority.
 */
export class DevicePanel {
  readonly element: HTMLElement;
  readonly model: DeviceModel;
  readonly #title: HTMLElement;
  readonly #status: HTMLElement;
  readonly #age: HTMLElement;
  readonly #conditions: HTMLElement;
  readonly #alarms: HTMLElement;
  readonly #alarmHistory: HTMLDetailsElement;
  readonly #alarmHistorySummary: HTMLElement;
  readonly #alarmHistoryList: HTMLElement;
  readonly #waves: HTMLElement;
  readonly #numerics: HTMLElement;
  readonly #note: HTMLElement;
  readonly #tiles = new Map<string, Tile>();
  readonly #waveViews = new Map<string, Wave>();

  constructor(info: DeviceInfo) {
    this.model = new DeviceModel(info);
    this.#title = h('span', { class: 'device-title' });
    this.#status = h('span', { class: 'device-status' });
    this.#age = h('span', { class: 'device-age' });
    this.#conditions = h('div', { class: 'device-conditions' });
    this.#alarms = h('ul', { class: 'alarms', 'aria-label': t('alarms'), 'aria-live': 'polite' });
    // Closed by default: on a phone the ended alarms must not push the live values off screen.
    this.#alarmHistorySummary = h('summary', {});
    this.#alarmHistoryList = h('ol', { class: 'alarm-history-list' });
    this.#alarmHistory = h('details', { class: 'alarm-history' }, this.#alarmHistorySummary, this.#alarmHistoryList);
    this.#waves = h('div', { class: 'waves' });
    this.#numerics = h('div', { class: 'numerics' });
    this.#note = h('p', { class: 'device-note' });
    this.element = h(
      'section',
      { class: 'device-panel', 'data-device-id': info.deviceId },
      h('header', { class: 'device-header' }, this.#title, this.#status, this.#age),
      this.#conditions,
      this.#alarms,
      this.#alarmHistory,
      this.#waves,
      this.#numerics,
      this.#note,
    );
    this.setInfo(info);
  }

  setInfo(info: DeviceInfo): void {
    this.model.setInfo(info);
    for (const channel of info.channels) {
      if (channel.kind === 'waveform' && !this.model.waveforms.has(channel.code)) this.model.waveforms.set(channel.code, { unit: channel.unit, sampleRate: 0 });
    }
    setText(this.#title, [info.model, info.type === 'other' ? '' : deviceTypeLabel(info.type), info.protocol].filter(Boolean).join(' · '));
    this.#status.dataset.status = info.status;
    setText(this.#status, t(`status.${info.status}`) + (info.reason ? ` (${info.reason})` : ''));
    this.render();
  }

  /** history: a join-time replay; shown by device time, never swept. */
  apply(readings: Reading[], history = false): void {
    const now = Date.now();
    for (const chunk of this.model.apply(readings, now, history)) {
      const wave = this.#wave(chunk.code, chunk.unit);
      wave.sweep.push(chunk.samples, chunk.sampleRate);
      wave.lastLiveAt = now;
    }
    this.render(now);
  }

  /** Refreshes values, ages and stale marks (the view calls this twice a second too). */
  render(now = Date.now()): void {
    for (const [code, { unit }] of [...this.model.waveforms].sort((a, b) => waveformRank(a[0]) - waveformRank(b[0]))) this.#wave(code, unit);
    for (const wave of this.#waveViews.values()) toggleClass(wave.el, 'stale', now - wave.lastLiveAt > STALE_AFTER_MS);
    this.#renderNumerics(now);
    this.#renderAlarms(now);
    const silent = this.model.isSilent(now);
    toggleClass(this.element, 'silent', silent);
    setText(this.#age, this.model.lastLiveAt ? (silent ? `${t('stale')} · ` : '') + formatAge(now - this.model.lastLiveAt) : t('noData'));
    this.#conditions.replaceChildren(...[...this.model.conditions.values()].map((c) => h('span', { class: 'condition' }, c.text || shortCodeName(c.code))));
    setText(this.#note, this.model.lateReadings ? t('backfilled', { n: this.model.lateReadings }) : '');
  }

  /** The alarms that may sound: active ones, never those of unknown state. */
  soundingAlarms(): ShownAlarm[] {
    return this.model.alarms.sounding();
  }

  dispose(): void {
    for (const wave of this.#waveViews.values()) wave.sweep.dispose();
    this.element.remove();
  }

  /** What tests read through window.hoichan.devices(). */
  snapshot(now = Date.now()) {
    const tiles: Record<string, { value: string; stale: boolean }> = {};
    for (const [id, tile] of this.#tiles) tiles[id] = { value: tile.value.textContent ?? '', stale: tile.el.classList.contains('stale') };
    const waves: Record<string, number> = {};
    for (const [code, wave] of this.#waveViews) waves[code] = wave.sweep.samplesDrawn;
    return {
      deviceId: this.model.info.deviceId,
      status: this.model.info.status,
      tiles,
      waves,
      lateReadings: this.model.lateReadings,
      lateSamples: this.model.lateSamples,
      readingsReceived: this.model.readingsReceived,
      lastSeq: this.model.lastSeq,
      alarms: this.model.sortedAlarms().map((a) => ({
        key: a.key,
        priority: a.priority,
        text: a.text,
        state: a.state,
        source: formatSource(a.source),
        since: a.since,
        ...(a.unknownSince !== undefined ? { unknownSince: a.unknownSince } : {}),
      })),
      alarmHistory: this.model.alarms.history().map((a) => ({ key: a.key, priority: a.priority, text: a.text, since: a.since ?? null, endedAt: a.endedAt })),
      silent: this.model.isSilent(now),
    };
  }

  #wave(code: string, unit: string): Wave {
    let wave = this.#waveViews.get(code);
    if (wave) return wave;
    const style = waveformStyle(code, unit);
    const sweep = new WaveformSweep({ color: style.color, mmPerUnit: style.mmPerUnit });
    const scale = style.mmPerUnit !== undefined && unit === 'mV' ? ` · ${style.mmPerUnit} mm/mV` : '';
    const label = h('span', { class: 'wave-label', style: `color:${style.color}` }, `${style.label ? t(style.label) : shortCodeName(code)}`, h('small', {}, ` ${SWEEP_MM_PER_S} mm/s${scale}`));
    const el = h('div', { class: 'wave', 'data-code': code }, label, sweep.element, h('span', { class: 'wave-stale' }, t('stale')));
    wave = { el, sweep, lastLiveAt: 0 };
    this.#waveViews.set(code, wave);
    // Keep rank order among existing waves.
    const after = [...this.#waves.children].find((child) => waveformRank((child as HTMLElement).dataset.code ?? '') > waveformRank(code));
    this.#waves.insertBefore(el, after ?? null);
    return wave;
  }

  #tile(id: string, label: string, color: string): Tile {
    let tile = this.#tiles.get(id);
    if (tile) return tile;
    const value = h('span', { class: 'numeric-value' }, '---');
    const sub = h('span', { class: 'numeric-sub' });
    const unit = h('span', { class: 'numeric-unit' });
    const age = h('span', { class: 'numeric-age' });
    const el = h(
      'div',
      { class: 'numeric', 'data-slot': id, style: `--numeric-color:${color}` },
      h('span', { class: 'numeric-label' }, label),
      unit,
      h('span', { class: 'numeric-main' }, value, sub),
      h('span', { class: 'numeric-foot' }, age, h('span', { class: 'numeric-stale' }, t('stale'))),
    );
    tile = { el, value, sub, unit, age };
    this.#tiles.set(id, tile);
    const rank = (x: string) => (TILE_ORDER.includes(x) ? TILE_ORDER.indexOf(x) : TILE_ORDER.length);
    const after = [...this.#numerics.children].find((child) => rank((child as HTMLElement).dataset.slot ?? '') > rank(id));
    this.#numerics.insertBefore(el, after ?? null);
    return tile;
  }

  /** The freshest shown value among codes. */
  #freshest(codes: (code: string) => boolean): ShownNumeric | undefined {
    let best: ShownNumeric | undefined;
    for (const shown of this.model.numerics.values()) if (codes(shown.code) && (!best || shown.localT > best.localT)) best = shown;
    return best;
  }

  #setTileState(tile: Tile, shown: ShownNumeric | undefined, now: number, staleAfterMs = STALE_AFTER_MS): void {
    const age = shown ? now - shown.localT : undefined;
    setText(tile.age, age === undefined ? t('noData') : formatAge(age));
    toggleClass(tile.el, 'stale', age === undefined || age > staleAfterMs);
  }

  #renderNumerics(now: number): void {
    const channelCodes = this.model.info.channels.filter((c) => c.kind === 'numeric').map((c) => c.code);
    const present = new Set([...channelCodes, ...this.model.numerics.keys()]);
    for (const slot of NUMERIC_SLOTS) {
      if (![...present].some((code) => slotOf(code) === slot.id)) continue;
      const tile = this.#tile(slot.id, t(slot.label), slot.color);
      const shown = this.#freshest((code) => slotOf(code) === slot.id);
      const unit = shown?.unit ?? this.model.info.channels.find((c) => slotOf(c.code) === slot.id)?.unit ?? '';
      setText(tile.unit, displayUnit(unit, slot.id));
      setText(tile.value, formatValue(shown?.value, slot.decimals));
      this.#setTileState(tile, shown, now);
    }
    if ([...present].some((code) => slotOf(code) === 'nibp')) {
      const tile = this.#tile('nibp', t('nibp'), NIBP_COLOR);
      const part = (codes: readonly string[]) => this.#freshest((code) => codes.includes(code));
      const sys = part(NIBP_CODES.sys);
      const dia = part(NIBP_CODES.dia);
      const mean = part(NIBP_CODES.mean);
      setText(tile.value, `${formatValue(sys?.value, 0)}/${formatValue(dia?.value, 0)}`);
      setText(tile.sub, `(${formatValue(mean?.value, 0)})`);
      setText(tile.unit, displayUnit(sys?.unit ?? 'mm[Hg]'));
      // The tile is as old as its oldest part.
      const parts = [sys, dia, mean].filter((p): p is ShownNumeric => p !== undefined);
      const oldest = parts.length ? parts.reduce((a, b) => (a.localT < b.localT ? a : b)) : undefined;
      this.#setTileState(tile, oldest, now, NIBP_STALE_AFTER_MS);
    }
    for (const code of present) {
      if (slotOf(code) !== undefined) continue;
      const tile = this.#tile(code, shortCodeName(code), '#e2e8f0');
      const shown = this.model.numerics.get(code);
      setText(tile.unit, displayUnit(shown?.unit ?? this.model.info.channels.find((c) => c.code === code)?.unit ?? ''));
      setText(tile.value, formatValue(shown?.value, Number.isInteger(shown?.value ?? 0) ? 0 : 1));
      this.#setTileState(tile, shown, now);
    }
  }

  #renderAlarms(now: number): void {
    const alarms = this.model.sortedAlarms();
    const key = alarms.map((a) => [a.key, a.priority, a.state, a.text, formatSource(a.source)].join('|')).join(';');
    if (this.#alarms.dataset.key !== key) {
      this.#alarms.dataset.key = key;
      this.#alarms.replaceChildren(
        ...alarms.map((a) =>
          h(
            'li',
            { class: 'alarm', 'data-priority': a.priority, 'data-state': a.state, 'data-key': a.key },
            h('span', { class: 'alarm-priority' }, t(`priority.${a.priority}`)),
            h('span', { class: 'alarm-text' }, a.text || shortCodeName(a.code)),
            h('span', { class: 'alarm-source' }, formatSource(a.source)),
            h('span', { class: 'alarm-age' }),
          ),
        ),
      );
    }
    alarms.forEach((a, i) => {
      const age = this.#alarms.children[i]?.querySelector('.alarm-age');
      if (!age) return;
      // Unknown: when it became unknown, not how long it has "been active".
      if (a.state === 'unknown') setText(age, t('alarmUnknownSince', { t: formatClock(a.unknownSince ?? a.localT) }));
      else setText(age, `${t('alarmSince', { t: formatClock(a.since) })} · ${formatAge(Math.max(0, now - a.since))}`);
    });
    this.#renderAlarmHistory(this.model.alarms.history());
  }

  #renderAlarmHistory(ended: readonly EndedAlarm[]): void {
    this.#alarmHistory.hidden = ended.length === 0;
    const key = ended.map((a) => `${a.key}@${a.endedAt}`).join(';');
    if (this.#alarmHistoryList.dataset.key === key) return;
    this.#alarmHistoryList.dataset.key = key;
    setText(this.#alarmHistorySummary, t('alarmHistory', { n: ended.length }));
    this.#alarmHistoryList.replaceChildren(
      ...ended.map((a) =>
        h(
          'li',
          { class: 'alarm-ended', 'data-priority': a.priority, 'data-key': a.key },
          h('span', { class: 'alarm-priority' }, t(`priority.${a.priority}`)),
          h('span', { class: 'alarm-text' }, [a.text || shortCodeName(a.code), formatSource(a.source)].filter(Boolean).join(' · ')),
          h(
            'span',
            { class: 'alarm-when' },
            a.since !== undefined ? `${formatClock(a.since)}–${formatClock(a.endedAt)}` : t('alarmEndedAt', { t: formatClock(a.endedAt) }),
          ),
        ),
      ),
    );
  }
}
