// PCD-01 / PCD-04 message text as a Mindray eGateway writes it, and legacy PDS
// (HL7 2.3.1) results. Each builder also returns what the driver should decode.

import type { SentValues } from '../simulator.js';
import type { BloodPressure, Vitals } from '../physiology.js';
import { hl7Time } from './wire.js';

export interface BuiltMessage {
  controlId: string;
  text: string;
  sent: SentValues;
}

export interface Sender {
  equipmentId: string;
  offset: string;
}

/** ECG resolution in mV per count (12-bit, ~819 counts per mV). */
export const ECG_RESOLUTION = 0.001221;

/** The value the driver reports for a raw count: raw x resolution at 12 significant digits. */
export function decodedSample(raw: number, resolution: number): number {
  return resolution === 1 ? raw : Number((raw * resolution).toPrecision(12));
}

function header(type: string, controlId: string, time: string, sender: Sender, profile: string): string {
  return [
    `MSH|^~\\&|MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|MINDRAY|||${time}||${type}|${controlId}|P|2.6|||AL|NE||UNICODE UTF-8|||${profile}`,
    // Simulated patient: no real person.
    'PID|||SIM0001^^^Hospital^PI||SIMULATED^PATIENT',
    'PV1||I|ICU^^1^HOICHAN SIM',
  ].join('\r');
}

const PCD01 = 'IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO';
const PCD04 = 'IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4^ISO';

interface NumericRow {
  code: string;
  name: string;
  containment: string;
  text: string;
  unit: string;
}

/** ORU^R01 with the periodic numerics, and NIBP when given. */
export function numericsMessage(controlId: string, now: number, sender: Sender, v: Vitals, nibp?: BloodPressure): BuiltMessage {
  const time = hl7Time(now, sender.offset);
  const rows: NumericRow[] = [
    { code: '147842', name: 'MDC_ECG_HEART_RATE', containment: '1.7.4.147842', text: String(v.heartRate), unit: '264864^MDC_DIM_BEAT_PER_MIN^MDC' },
    { code: '150456', name: 'MDC_PULS_OXIM_SAT_O2', containment: '1.3.1.150456', text: String(v.spo2), unit: '262688^MDC_DIM_PERCENT^MDC' },
    { code: '149530', name: 'MDC_PULS_OXIM_PULS_RATE', containment: '1.3.1.149530', text: String(v.pulseRate), unit: '264864^MDC_DIM_BEAT_PER_MIN^MDC' },
    { code: '151578', name: 'MDC_TTHOR_RESP_RATE', containment: '1.7.1.151578', text: String(v.respRate), unit: '264928^MDC_DIM_RESP_PER_MIN^MDC' },
    { code: '150344', name: 'MDC_TEMP', containment: '1.9.1.150344', text: v.temperature.toFixed(1), unit: '268192^MDC_DIM_DEGC^MDC' },
  ];
  if (nibp) {
    rows.push(
      { code: '150301', name: 'MDC_PRESS_CUFF_SYS', containment: '1.5.1.150301', text: String(nibp.systolic), unit: '266016^MDC_DIM_MMHG^MDC' },
      { code: '150302', name: 'MDC_PRESS_CUFF_DIA', containment: '1.5.1.150302', text: String(nibp.diastolic), unit: '266016^MDC_DIM_MMHG^MDC' },
      { code: '150303', name: 'MDC_PRESS_CUFF_MEAN', containment: '1.5.1.150303', text: String(nibp.mean), unit: '266016^MDC_DIM_MMHG^MDC' },
    );
  }
  const equipment = `${sender.equipmentId}^HOICHAN_SIM^${sender.equipmentId}^EUI-64`;
  const obx = rows.map(
    (r, i) => `OBX|${i + 1}|NM|${r.code}^${r.name}^MDC|${r.containment}|${r.text}|${r.unit}|||||R|||${time}||||${i === 0 ? equipment : ''}`,
  );
  const numerics: Record<string, number> = {};
  for (const r of rows) numerics[r.name] = Number(r.text);
  const text = [
    header('ORU^R01^ORU_R01', controlId, time, sender, PCD01),
    `OBR|1|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|182777000^monitoring of patient^SCT|||${time}`,
    ...obx,
  ].join('\r') + '\r';
  return { controlId, text, sent: { t: now, numerics } };
}

/** ORU^R01 waveform window: ECG II (mV via resolution) and pleth (unitless), starting at `start`. */
export function waveformMessage(
  controlId: string,
  start: number,
  end: number,
  sender: Sender,
  ecg: { rate: number; millivolts: number[] },
  pleth: { rate: number; values: number[] },
): BuiltMessage {
  const from = hl7Time(start, sender.offset);
  const to = hl7Time(end, sender.offset);
  const counts = ecg.millivolts.map((mv) => Math.round(mv / ECG_RESOLUTION));
  const equipment = `${sender.equipmentId}^HOICHAN_SIM^${sender.equipmentId}^EUI-64`;
  const text = [
    header('ORU^R01^ORU_R01', controlId, to, sender, PCD01),
    `OBR|1|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|100001^CONTINUOUS WAVEFORM^99MNDRY|||${from}|${to}`,
    `OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.7.6.131330|${counts.join('^')}||||||R|||${from}||||${equipment}`,
    `OBX|2|NM|2436^MDC_ATTR_SAMP_RATE^MDC|1.7.6.131330.1|${ecg.rate}|264640^MDC_DIM_HZ^MDC`,
    `OBX|3|NM|2327^MDC_ATTR_NU_MSMT_RES^MDC|1.7.6.131330.2|${ECG_RESOLUTION}|266418^MDC_DIM_MILLI_VOLT^MDC`,
    `OBX|4|NA|150452^MDC_PULS_OXIM_PLETH^MDC|1.3.1.150452|${pleth.values.join('^')}||||||R|||${from}`,
    `OBX|5|NM|2436^MDC_ATTR_SAMP_RATE^MDC|1.3.1.150452.1|${pleth.rate}|264640^MDC_DIM_HZ^MDC`,
  ].join('\r') + '\r';
  return {
    controlId,
    text,
    sent: {
      t: start,
      waveformSamples: {
        MDC_ECG_ELEC_POTL_II: counts.map((c) => decodedSample(c, ECG_RESOLUTION)),
        MDC_PULS_OXIM_PLETH: pleth.values.slice(),
      },
    },
  };
}

/** ORU^R40 lead-off alarm (technical, low priority): start/active or end/inactive, no source row. */
export function leadOffAlarmMessage(controlId: string, now: number, sender: Sender, active: boolean): BuiltMessage {
  const time = hl7Time(now, sender.offset);
  const equipment = `${sender.equipmentId}^HOICHAN_SIM^${sender.equipmentId}^EUI-64`;
  const phase = active ? 'start' : 'end';
  const text = [
    header('ORU^R40^ORU_R40', controlId, time, sender, PCD04),
    `OBR|1|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|196616^MDC_EVT_ALARM^MDC|||${time}`,
    `OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.7.0.196680.1|196680^MDC_EVT_LEAD_OFF^MDC|||A~PL~ST|||R|||${time}||||${equipment}`,
    `OBX|2|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.7.0.196680.3|${phase}`,
    `OBX|3|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.7.0.196680.4|${active ? 'active' : 'inactive'}`,
    `OBX|4|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.7.0.196680.6|PL`,
  ].join('\r') + '\r';
  return {
    controlId,
    text,
    sent: { t: now, alarm: { code: 'MDC_EVT_LEAD_OFF', priority: 'low', active, phase, text: 'MDC_EVT_LEAD_OFF', alarmId: 'MDC_EVT_LEAD_OFF||1.7.0.196680' } },
  };
}

/**
 * The monitor's alert text for SpO2 low, as a Mindray gateway writes it: the
 * Vietnamese letters as \Xhh\ UTF-8 escapes, `|` escaped as \F\, and the `^`
 * before the limit left unescaped (the driver reads the whole ST value).
 */
export const SPO2_LOW_TEXT = 'SpO2 thấp | giới hạn^90';

/** The simulator's own HL7 escaping: separators that matter here, and non-ASCII as UTF-8 \Xhh\. */
function escapeAlertText(text: string): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\E\\';
    else if (ch === '|') out += '\\F\\';
    else if (ch === '~') out += '\\R\\';
    else if (ch === '&') out += '\\T\\';
    else if (ch.charCodeAt(0) > 0x7e) out += `\\X${Buffer.from(ch, 'utf8').toString('hex').toUpperCase()}\\`;
    else out += ch;
  }
  return out;
}

/**
 * ORU^R40 SpO2-low alarm (physiological, medium priority), the full PCD-04
 * group of issue 9: event, source parameter with its value, phase, state,
 * inactivation state, priority, alert type and the monitor's alert text,
 * all under OBX-4 `1.3.1.150456.<facet>`.
 */
export function spo2LowAlarmMessage(controlId: string, now: number, sender: Sender, phase: 'start' | 'continue' | 'end', spo2: number): BuiltMessage {
  const time = hl7Time(now, sender.offset);
  const equipment = `${sender.equipmentId}^HOICHAN_SIM^${sender.equipmentId}^EUI-64`;
  const active = phase !== 'end';
  const p = '1.3.1.150456';
  const text = [
    header('ORU^R40^ORU_R40', controlId, time, sender, PCD04),
    `OBR|1|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|${controlId}^MINDRAY_EGATEWAY^${sender.equipmentId}^EUI-64|196616^MDC_EVT_ALARM^MDC|||${time}`,
    `OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|${p}.1|196674^MDC_EVT_LO_VAL_LT_LIM^MDC|||L~PM~SP|||R|||${time}||||${equipment}`,
    `OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|${p}.2|${spo2}|262688^MDC_DIM_PERCENT^MDC|||||R|||${time}`,
    `OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|${p}.3|${phase}`,
    `OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|${p}.4|${active ? 'active' : 'inactive'}`,
    `OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|${p}.5|enabled`,
    `OBX|6|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|${p}.6|PM`,
    `OBX|7|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|${p}.7|SP`,
    `OBX|8|ST|68546^MDC_ATTR_ALERT_TEXT^MDC|${p}.8|${escapeAlertText(SPO2_LOW_TEXT)}`,
  ].join('\r') + '\r';
  return {
    controlId,
    text,
    sent: {
      t: now,
      alarm: {
        code: 'MDC_EVT_LO_VAL_LT_LIM',
        priority: 'medium',
        active,
        phase,
        text: SPO2_LOW_TEXT,
        alarmId: `MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|${p}`,
      },
    },
  };
}

/** Legacy PDS (2.3.1) result: private codes, no device time. */
export function pdsResultMessage(controlId: string, now: number, v: Vitals, nibp?: BloodPressure): BuiltMessage {
  const rows: Array<[string, string, string, string]> = [
    ['101', 'HR', String(v.heartRate), 'MDC_ECG_HEART_RATE'],
    ['151', 'RR', String(v.respRate), 'MDC_TTHOR_RESP_RATE'],
    ['160', 'SpO2', String(v.spo2), 'MDC_PULS_OXIM_SAT_O2'],
    ['161', 'PR', String(v.pulseRate), 'MDC_PULS_OXIM_PULS_RATE'],
    ['200', 'T1', v.temperature.toFixed(1), 'MDC_TEMP'],
  ];
  if (nibp) {
    rows.push(['170', 'Sys', String(nibp.systolic), 'MDC_PRESS_BLD_NONINV_SYS'], ['171', 'Dia', String(nibp.diastolic), 'MDC_PRESS_BLD_NONINV_DIA']);
  }
  const numerics: Record<string, number> = {};
  for (const [, , text, code] of rows) numerics[code] = Number(text);
  const text = [
    `MSH|^~\\&|Mindray|PDS|||||ORU^R01|${controlId}|P|2.3.1`,
    'PID|||SIM0001||SIMULATED^PATIENT',
    'OBR||||Mindray Monitor',
    ...rows.map(([id, name, value], i) => `OBX|${i + 1}|NM|${id}^${name}|${2000 + Number(id)}|${value}||||||F`),
  ].join('\r') + '\r';
  return { controlId, text, sent: { t: now, numerics } };
}
