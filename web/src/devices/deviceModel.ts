import type { DeviceInfo, Reading } from '../contract';
import { AlarmBook, type ShownAlarm } from './alarmModel';

export type { EndedAlarm, ShownAlarm } from './alarmModel';

/** A value with no fresh data for this long is shown as stale (issue 5). */
export const STALE_AFTER_MS = 5000;
/**
 * NIBP is measured by cuff cycles minutes apart, not streamed: a monitor shows
 * the last reading with its time, and so do we, stale only when it is older
 * than a usual auto-cycle interval could explain.
 */
export const NIBP_STALE_AFTER_MS = 20 * 60_000;
const HISTORY_PER_CODE = 900;

export interface ShownNumeric {
  code: string;
  unit: string;
  /** null: the device flagged the value invalid (shown as ---). */
  value: number | null;
  /** Device time of the value. */
  t: number;
  /** Local time (performance-independent Date.now()) the value stands for. */
  localT: number;
  late: boolean;
}

export interface ShownCondition {
  code: string;
  text: string;
}

export interface LiveWaveChunk {
  code: string;
  unit: string;
  sampleRate: number;
  samples: (number | null)[];
}

/**
 * What a viewer knows about one device: its DeviceInfo, the newest value of each
 * numeric, alarms (alarmModel.ts) and conditions, and a bounded history. Live readings
 * are timed by their arrival; late (backfilled) ones by their device time mapped
 * onto the local clock, so an old value never looks fresh.
 */
export class DeviceModel {
  #info: DeviceInfo;
  readonly numerics = new Map<string, ShownNumeric>();
  readonly history = new Map<string, { t: number; value: number | null }[]>();
  readonly alarms: AlarmBook;
  readonly conditions = new Map<string, ShownCondition>();
  readonly waveforms = new Map<string, { unit: string; sampleRate: number }>();
  lateReadings = 0;
  lateSamples = 0;
  /** Readings applied that were not join-time history, and the highest seq seen (tests check nothing was lost). */
  readingsReceived = 0;
  lastSeq = 0;
  /** Local time of the last live reading. */
  lastLiveAt = 0;
  /** Local clock minus device clock, estimated from live readings. */
  #clockOffset: number | undefined;

  constructor(info: DeviceInfo) {
    this.#info = info;
    this.alarms = new AlarmBook(info.status);
    for (const channel of info.channels) {
      if (channel.kind === 'waveform') this.waveforms.set(channel.code, { unit: channel.unit, sampleRate: 0 });
    }
  }

  get info(): DeviceInfo {
    return this.#info;
  }

  /** A deviceStatus (or join-reply) DeviceInfo: a device going offline turns its active alarms to unknown. */
  setInfo(info: DeviceInfo, now = Date.now()): void {
    const changed = info.status !== this.#info.status;
    this.#info = info;
    if (changed) this.alarms.setStatus(info.status, now);
  }

  /**
   * Applies readings (in seq order); returns the live waveform chunks to sweep.
   * Late (backfilled) readings and a join-time replay (history) are the past:
   * kept in history and aged by device time, never swept.
   */
  apply(readings: Reading[], now = Date.now(), history = false): LiveWaveChunk[] {
    const live: LiveWaveChunk[] = [];
    for (const reading of readings) {
      const late = reading.late === true || history;
      if (!history) this.readingsReceived++;
      this.lastSeq = Math.max(this.lastSeq, reading.seq);
      if (reading.late === true) this.lateReadings++;
      else {
        this.lastLiveAt = now;
        const end = reading.kind === 'waveform' ? reading.t + (reading.samples.length * 1000) / reading.sampleRate : reading.t;
        this.#learnOffset(now - end);
      }
      const localT = late ? this.localTimeOf(reading.t) : now;
      switch (reading.kind) {
        case 'numeric': {
          this.#remember(reading.code, reading.t, reading.value);
          const shown = this.numerics.get(reading.code);
          if (!late || !shown || reading.t > shown.t) {
            this.numerics.set(reading.code, { code: reading.code, unit: reading.unit, value: reading.value, t: reading.t, localT, late });
          }
          break;
        }
        case 'waveform': {
          const known = this.waveforms.get(reading.code);
          if (!known || known.sampleRate !== reading.sampleRate) this.waveforms.set(reading.code, { unit: reading.unit, sampleRate: reading.sampleRate });
          // Late chunks belong to the past: never into the live sweep.
          if (reading.late === true) this.lateSamples += reading.samples.length;
          else live.push({ code: reading.code, unit: reading.unit, sampleRate: reading.sampleRate, samples: reading.samples });
          break;
        }
        case 'alarm':
          this.alarms.apply(reading, { localT, past: late });
          break;
        case 'status':
          if (late) break;
          if (reading.active) this.conditions.set(reading.code, { code: reading.code, text: reading.text });
          else this.conditions.delete(reading.code);
          break;
      }
    }
    return live;
  }

  /** Device time to local time (ms since epoch); before any live reading, clocks are assumed in step. */
  localTimeOf(deviceT: number): number {
    return deviceT + (this.#clockOffset ?? 0);
  }

  ageOf(code: string, now = Date.now()): number | undefined {
    const shown = this.numerics.get(code);
    return shown ? Math.max(0, now - shown.localT) : undefined;
  }

  isStale(code: string, now = Date.now()): boolean {
    const age = this.ageOf(code, now);
    return age === undefined || age > STALE_AFTER_MS;
  }

  /** No live data at all for STALE_AFTER_MS. */
  isSilent(now = Date.now()): boolean {
    return now - this.lastLiveAt > STALE_AFTER_MS;
  }

  /** Active and unknown alarms, highest priority first, then newest. */
  sortedAlarms(): ShownAlarm[] {
    return this.alarms.sorted();
  }

  #learnOffset(candidate: number): void {
    // Track the smallest observed delay (closest to the true clock offset), but
    // follow slowly upward so clock drift does not pin it to an old minimum.
    if (this.#clockOffset === undefined || candidate < this.#clockOffset) this.#clockOffset = candidate;
    else this.#clockOffset += (candidate - this.#clockOffset) * 0.02;
  }

  #remember(code: string, t: number, value: number | null): void {
    let list = this.history.get(code);
    if (!list) this.history.set(code, (list = []));
    // Backfill lands in the middle: insert in time order.
    let i = list.length;
    while (i > 0 && list[i - 1]!.t > t) i--;
    list.splice(i, 0, { t, value });
    if (list.length > HISTORY_PER_CODE) list.splice(0, list.length - HISTORY_PER_CODE);
  }
}
