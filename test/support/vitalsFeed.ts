import type { DeviceInfo, Reading, ReadingBody } from '../../src/devices/reading.js';

/** A reading as the test writes it: seq and deviceId are filled in by send(). */
export type TestReading = ReadingBody & { late?: boolean };
import type { Hub } from '../../src/hub/Hub.js';
import { Ecg, Pleth } from '../../src/sim/physiology.js';

export const MONITOR_VALUES = {
  MDC_ECG_HEART_RATE: 72,
  MDC_PULS_OXIM_SAT_O2: 97,
  MDC_PULS_OXIM_PULS_RATE: 71,
  MDC_PRESS_BLD_NONINV_SYS: 118,
  MDC_PRESS_BLD_NONINV_DIA: 76,
  MDC_PRESS_BLD_NONINV_MEAN: 90,
  MDC_RESP_RATE: 16,
  MDC_TEMP: 36.8,
} as const;

const UNITS: Record<string, string> = {
  MDC_ECG_HEART_RATE: '/min',
  MDC_PULS_OXIM_SAT_O2: '%',
  MDC_PULS_OXIM_PULS_RATE: '/min',
  MDC_PRESS_BLD_NONINV_SYS: 'mm[Hg]',
  MDC_PRESS_BLD_NONINV_DIA: 'mm[Hg]',
  MDC_PRESS_BLD_NONINV_MEAN: 'mm[Hg]',
  MDC_RESP_RATE: '/min',
  MDC_TEMP: 'Cel',
};

export function monitorInfo(deviceId: string, conferenceId: string): DeviceInfo {
  return {
    deviceId,
    conferenceId,
    type: 'vitals',
    model: 'Bedside monitor (test feed)',
    protocol: 'hl7',
    status: 'online',
    channels: [
      ...Object.keys(MONITOR_VALUES).map((code) => ({ code, unit: UNITS[code]!, kind: 'numeric' as const })),
      { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' },
      { code: 'MDC_PULS_OXIM_PLETH', unit: '', kind: 'waveform' },
    ],
  };
}

/**
 * A bedside monitor driven from the test process through the hub's own event
 * path (Conference.broadcast): lead II ECG at 250 Hz and pleth at 100 Hz in
 * 200 ms chunks, numerics once a second.
 */
export class VitalsFeed {
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #ecgT: number;
  readonly #ecg: Ecg;
  #plethT: number;
  readonly #pleth: Pleth;
  #ticks = 0;
  values: Record<string, number | null> = { ...MONITOR_VALUES };

  constructor(
    private readonly hub: Hub,
    readonly conferenceId: string,
    readonly deviceId = 'monitor-1',
  ) {
    this.#ecgT = Date.now();
    this.#plethT = this.#ecgT;
    const heartRate = () => (this.values.MDC_ECG_HEART_RATE as number | null) ?? 72;
    this.#ecg = new Ecg(this.#ecgT / 1000, heartRate);
    this.#pleth = new Pleth(this.#plethT / 1000, heartRate, { offset: 0, span: 1 });
  }

  start(): void {
    this.send([]);
    this.hub.conferences.get(this.conferenceId)!.broadcast('deviceStatus', monitorInfo(this.deviceId, this.conferenceId));
    this.#timer = setInterval(() => this.#tick(), 200);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Sends readings (seq and deviceId filled in) to every peer of the conference. */
  send(bodies: TestReading[]): void {
    if (bodies.length === 0) return;
    const readings = bodies.map((b) => ({ ...b, deviceId: this.deviceId, seq: ++this.#seq }) as Reading);
    this.hub.conferences.get(this.conferenceId)?.broadcast('deviceReadings', { deviceId: this.deviceId, readings });
  }

  #tick(): void {
    const now = Date.now();
    const bodies: TestReading[] = [];
    const ecgSamples: number[] = [];
    const ecgStart = this.#ecgT;
    while (this.#ecgT < now) {
      ecgSamples.push(Math.round(this.#ecg.leadII(this.#ecgT / 1000) * 1000) / 1000);
      this.#ecgT += 4; // 250 Hz
    }
    bodies.push({ kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: ecgStart, rt: now, sampleRate: 250, samples: ecgSamples });
    const plethSamples: number[] = [];
    const plethStart = this.#plethT;
    while (this.#plethT < now) {
      plethSamples.push(Math.round(1000 * this.#pleth.sample(this.#plethT / 1000).value) / 1000);
      this.#plethT += 10; // 100 Hz
    }
    bodies.push({ kind: 'waveform', code: 'MDC_PULS_OXIM_PLETH', unit: '', t: plethStart, rt: now, sampleRate: 100, samples: plethSamples });
    // Status again every 2 s so a viewer that joined later learns the device's identity.
    if (this.#ticks % 10 === 0) this.hub.conferences.get(this.conferenceId)?.broadcast('deviceStatus', monitorInfo(this.deviceId, this.conferenceId));
    if (this.#ticks++ % 5 === 0) {
      for (const [code, value] of Object.entries(this.values)) bodies.push({ kind: 'numeric', code, unit: UNITS[code]!, t: now, rt: now, value });
    }
    this.send(bodies);
  }
}
