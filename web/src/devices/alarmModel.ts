// One device's alarms as a viewer shows them (issue 9): active alarms keyed by
// their identity, a short history of ended ones, and "unknown" when the device
// went offline with an alarm still on. Pure decisions: no DOM, no clock of its
// own (callers pass the local time), so it is tested from mocha as it is and
// devicePanel.ts only draws what it says.
import type { AlarmPriority, DeviceStatus, Reading } from '../contract.js';

type AlarmReading = Extract<Reading, { kind: 'alarm' }>;

/** Ended alarms kept per device, newest first. */
export const ALARM_HISTORY_PER_DEVICE = 10;
/** Identities remembered for ordering (active, in history, and recently seen); old ones are forgotten beyond this. */
const SEEN_LIMIT = 256;

export interface AlarmSource {
  code: string;
  unit: string;
  value: number | null;
}

export interface ShownAlarm {
  /** Identity within the device: the reading's alarmId, else its event code. */
  key: string;
  code: string;
  priority: AlarmPriority;
  /** The monitor's own alert text ('' when it sent none). */
  text: string;
  phase?: string;
  source?: AlarmSource;
  /**
   * 'active': the device says so. 'unknown': the device went offline while the
   * alarm was active, so nobody knows; shown as such, never sounded.
   */
  state: 'active' | 'unknown';
  /** Local time the alarm started here (its first active reading this viewer saw). */
  since: number;
  /** Device time and local time of the newest reading about it. */
  t: number;
  localT: number;
  /** Local time since when the state is unknown. */
  unknownSince?: number;
}

export interface EndedAlarm {
  key: string;
  code: string;
  priority: AlarmPriority;
  text: string;
  source?: AlarmSource;
  /** Local start time; undefined when this viewer never saw it active (an end in the join-time replay). */
  since?: number;
  /** Local time of the end reading. */
  endedAt: number;
}

/** How the reading reached the viewer: live, or the past (late backfill, join-time replay). */
export interface AlarmArrival {
  /** Local time the reading stands for (arrival for live readings, device time mapped to local for the past). */
  localT: number;
  past: boolean;
}

const PRIORITY_ORDER: Record<AlarmPriority, number> = { high: 0, medium: 1, low: 2 };

export function alarmKey(reading: Pick<AlarmReading, 'alarmId' | 'code'>): string {
  return reading.alarmId || reading.code;
}

export class AlarmBook {
  readonly #active = new Map<string, ShownAlarm>();
  /** Newest first, at most ALARM_HISTORY_PER_DEVICE. */
  readonly #history: EndedAlarm[] = [];
  /** Newest seq and device time applied per identity. */
  readonly #seen = new Map<string, { seq: number; t: number }>();
  #status: DeviceStatus;

  constructor(status: DeviceStatus = 'online') {
    this.#status = status;
  }

  /** Active and unknown alarms, highest priority first, then newest. */
  sorted(): ShownAlarm[] {
    return [...this.#active.values()].sort((a, b) => PRIORITY_ORDER[a.priority] - PRIORITY_ORDER[b.priority] || b.t - a.t);
  }

  /** Ended alarms, newest first. */
  history(): readonly EndedAlarm[] {
    return this.#history;
  }

  /** The alarms that may sound: active ones, never unknown ones. */
  sounding(): ShownAlarm[] {
    return this.sorted().filter((a) => a.state === 'active');
  }

  /**
   * The device's status changed. Offline: every active alarm becomes unknown
   * from now on, as nobody can tell whether it still holds. Back online, they
   * stay unknown until a reading about them arrives (the monitor resends
   * active alarms; a lost end must not look like a still-active alarm).
   */
  setStatus(status: DeviceStatus, now: number): void {
    this.#status = status;
    if (status !== 'offline') return;
    for (const alarm of this.#active.values()) {
      if (alarm.state === 'active') {
        alarm.state = 'unknown';
        alarm.unknownSince = now;
      }
    }
  }

  apply(reading: AlarmReading, arrival: AlarmArrival): void {
    const key = alarmKey(reading);
    // Readings of one device come in seq order, except that an alarm notice
    // jumps its device's backlog and is delivered again in order later. So a
    // reading is stale when neither its seq nor its device time is newer than
    // what was applied for this alarm: that drops the repeat and the backlog
    // behind the notice, yet a journal wiped at the site (seqs restarting at
    // 1) still gets through by its newer device time.
    const seen = this.#seen.get(key);
    if (seen && reading.seq <= seen.seq && reading.t <= seen.t) return;
    this.#remember(key, reading.seq, reading.t);
    if (reading.active) this.#activate(key, reading, arrival);
    else this.#end(key, reading, arrival);
  }

  #activate(key: string, reading: AlarmReading, { localT, past }: AlarmArrival): void {
    const existing = this.#active.get(key);
    // A reading from the past about a device that is offline now says only
    // that the alarm was active then.
    const unknown = past && this.#status === 'offline';
    const alarm: ShownAlarm = {
      key,
      code: reading.code,
      priority: reading.priority,
      text: reading.text || existing?.text || '',
      state: unknown ? 'unknown' : 'active',
      since: existing?.since ?? localT,
      t: reading.t,
      localT,
    };
    if (reading.phase !== undefined) alarm.phase = reading.phase;
    const source = reading.source ?? existing?.source;
    if (source) alarm.source = source;
    if (unknown) alarm.unknownSince = localT;
    this.#active.set(key, alarm);
  }

  #end(key: string, reading: AlarmReading, { localT }: AlarmArrival): void {
    const ended: ShownAlarm[] = [];
    const existing = this.#active.get(key);
    if (reading.alarmId) {
      if (existing) ended.push(existing);
    } else {
      // An end without identity (an older agent) ends every alarm of its code.
      for (const alarm of this.#active.values()) if (alarm.code === reading.code) ended.push(alarm);
    }
    if (ended.length === 0) {
      // An end this viewer never saw start (the join-time replay keeps the
      // latest reading per alarm): history only, never on screen as active.
      this.#record({ key, code: reading.code, priority: reading.priority, text: reading.text, ...(reading.source ? { source: reading.source } : {}), endedAt: localT });
      return;
    }
    for (const alarm of ended) {
      this.#active.delete(alarm.key);
      const source = reading.source ?? alarm.source;
      this.#record({
        key: alarm.key,
        code: alarm.code,
        priority: alarm.priority,
        text: reading.text || alarm.text,
        ...(source ? { source } : {}),
        since: alarm.since,
        endedAt: localT,
      });
    }
  }

  #record(entry: EndedAlarm): void {
    this.#history.unshift(entry);
    if (this.#history.length > ALARM_HISTORY_PER_DEVICE) this.#history.length = ALARM_HISTORY_PER_DEVICE;
  }

  #remember(key: string, seq: number, t: number): void {
    this.#seen.delete(key);
    this.#seen.set(key, { seq, t });
    if (this.#seen.size <= SEEN_LIMIT) return;
    // Forget the least recently seen identity that is not on screen.
    for (const old of this.#seen.keys()) {
      if (!this.#active.has(old)) {
        this.#seen.delete(old);
        return;
      }
    }
  }
}
