import type { Reading } from '../../src/devices/reading.js';

export type AlarmReading = Extract<Reading, { kind: 'alarm' }>;

/** Device time of the first reading in the builders below (2023-11-14). */
export const ALARM_T0 = 1_700_000_000_000;

/**
 * An alarm reading with every field a test does not care about filled in:
 * device d1, seq 1, an active high-priority MDC_EVT_ALARM at ALARM_T0,
 * received at its device time.
 */
export function alarmReading(fields: Partial<AlarmReading> = {}): AlarmReading {
  const t = fields.t ?? ALARM_T0;
  return { deviceId: 'd1', seq: 1, kind: 'alarm', code: 'MDC_EVT_ALARM', unit: '', t, rt: t, priority: 'high', text: 'alarm', active: true, ...fields };
}

/**
 * One phase of a limit alarm with its identity, as PCD-04 monitors send it:
 * a medium MDC_EVT_LO_VAL_LT_LIM at ALARM_T0 + seq seconds, state following active.
 */
export function limitAlarm(seq: number, alarmId: string, active: boolean, phase: string, fields: Partial<AlarmReading> = {}): AlarmReading {
  const t = ALARM_T0 + seq * 1000;
  return alarmReading({ seq, t, rt: t, code: 'MDC_EVT_LO_VAL_LT_LIM', priority: 'medium', text: alarmId, active, phase, state: active ? 'active' : 'inactive', alarmId, ...fields });
}
