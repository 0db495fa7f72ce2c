// Code tables: MDC observation codes, MDC_DIM units -> UCUM, Mindray private
// (99MNDRY) and legacy PDS codes -> MDC, and the invalid-value sentinels.
// Sources: IEEE 11073-10101 (MDC codes), IHE PCD-01 (MDC_DIM units) and the
// Mindray and PDS tables documented in docs/devices/hl7.md, "Codes".

export interface CodeInfo {
  /** IEEE 11073-10101 reference id used as the reading code. */
  code: string;
  /** UCUM unit to use when OBX-6 is empty. */
  unit: string;
  /** The quantity cannot be negative, so -1 and -100 are "no value" sentinels. */
  nonNegative?: boolean;
}

const rate = (code: string): CodeInfo => ({ code, unit: '/min', nonNegative: true });
const pressure = (code: string): CodeInfo => ({ code, unit: 'mm[Hg]', nonNegative: true });

/** Numeric MDC code -> reference id, for senders that leave OBX-3.2 empty. */
export const MDC_CODES: ReadonlyMap<string, CodeInfo> = new Map([
  ['147842', rate('MDC_ECG_HEART_RATE')],
  ['148066', rate('MDC_ECG_V_P_C_RATE')],
  ['150456', { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', nonNegative: true }],
  ['149530', rate('MDC_PULS_OXIM_PULS_RATE')],
  ['150488', { code: 'MDC_BLD_PERF_INDEX', unit: '%', nonNegative: true }],
  ['150021', pressure('MDC_PRESS_BLD_NONINV_SYS')],
  ['150022', pressure('MDC_PRESS_BLD_NONINV_DIA')],
  ['150023', pressure('MDC_PRESS_BLD_NONINV_MEAN')],
  ['150301', pressure('MDC_PRESS_CUFF_SYS')],
  ['150302', pressure('MDC_PRESS_CUFF_DIA')],
  ['150303', pressure('MDC_PRESS_CUFF_MEAN')],
  ['150037', pressure('MDC_PRESS_BLD_ART_ABP_SYS')],
  ['150038', pressure('MDC_PRESS_BLD_ART_ABP_DIA')],
  ['150039', pressure('MDC_PRESS_BLD_ART_ABP_MEAN')],
  ['150344', { code: 'MDC_TEMP', unit: 'Cel', nonNegative: true }],
  ['151562', rate('MDC_RESP_RATE')],
  ['151578', rate('MDC_TTHOR_RESP_RATE')],
  ['151708', pressure('MDC_CONC_AWAY_CO2_ET')],
  ['131329', { code: 'MDC_ECG_ELEC_POTL_I', unit: 'mV' }],
  ['131330', { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV' }],
  ['131389', { code: 'MDC_ECG_ELEC_POTL_III', unit: 'mV' }],
  ['131390', { code: 'MDC_ECG_ELEC_POTL_AVR', unit: 'mV' }],
  ['131391', { code: 'MDC_ECG_ELEC_POTL_AVL', unit: 'mV' }],
  ['131392', { code: 'MDC_ECG_ELEC_POTL_AVF', unit: 'mV' }],
  ['150452', { code: 'MDC_PULS_OXIM_PLETH', unit: '' }],
]);

const MDC_BY_NAME = new Map([...MDC_CODES.values()].map((c) => [c.code, c]));

/** Mindray private codes (coding system 99MNDRY), keyed by OBX-3.1. */
export const MINDRAY_PRIVATE_CODES: ReadonlyMap<string, CodeInfo> = new Map([
  // Ventricular premature beats per minute: the MDC PVC rate.
  ['352', rate('MDC_ECG_V_P_C_RATE')],
  // No MDC equivalent: kept under Mindray's own names.
  ['108', rate('MNDRY_ECG_PAUSE_RATE')],
  ['579', rate('MNDRY_ECG_RHY_V_P_C_CPLT_RATE')],
  ['580', rate('MNDRY_ECG_RHY_MISSB_RATE')],
  ['581', rate('MNDRY_ECG_BEAT_V_P_C_RonT_RATE')],
]);

/** Legacy Mindray PDS (HL7 2.3.1) codes like `101^HR` (no coding system), keyed by OBX-3.1. */
export const LEGACY_PDS_CODES: ReadonlyMap<string, CodeInfo> = new Map([
  ['101', rate('MDC_ECG_HEART_RATE')],
  ['151', rate('MDC_TTHOR_RESP_RATE')],
  ['160', { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', nonNegative: true }],
  ['161', rate('MDC_PULS_OXIM_PULS_RATE')],
  ['170', pressure('MDC_PRESS_BLD_NONINV_SYS')],
  ['171', pressure('MDC_PRESS_BLD_NONINV_DIA')],
  ['172', pressure('MDC_PRESS_BLD_NONINV_MEAN')],
  ['200', { code: 'MDC_TEMP', unit: 'Cel', nonNegative: true }],
  ['250', pressure('MDC_CONC_AWAY_CO2_ET')],
  ['500', pressure('MDC_PRESS_BLD_ART_ABP_SYS')],
  ['502', pressure('MDC_PRESS_BLD_ART_ABP_DIA')],
  ['605', { code: 'MDC_PRESS_BLD_VEN_CENT_MEAN', unit: 'mm[Hg]' }],
]);

/** MDC_DIM unit codes and names -> UCUM. */
const MDC_UNITS: ReadonlyArray<[string, string, string]> = [
  ['262656', 'MDC_DIM_DIMLESS', ''],
  ['262688', 'MDC_DIM_PERCENT', '%'],
  ['264864', 'MDC_DIM_BEAT_PER_MIN', '/min'],
  ['264928', 'MDC_DIM_RESP_PER_MIN', '/min'],
  ['266016', 'MDC_DIM_MMHG', 'mm[Hg]'],
  ['265987', 'MDC_DIM_KILO_PA', 'kPa'],
  ['266048', 'MDC_DIM_CM_H2O', 'cm[H2O]'],
  ['268192', 'MDC_DIM_DEGC', 'Cel'],
  ['266560', 'MDC_DIM_FAHR', '[degF]'],
  ['266418', 'MDC_DIM_MILLI_VOLT', 'mV'],
  ['266419', 'MDC_DIM_MICRO_VOLT', 'uV'],
  ['264640', 'MDC_DIM_HZ', 'Hz'],
  ['264320', 'MDC_DIM_SEC', 's'],
  ['264338', 'MDC_DIM_MILLI_SEC', 'ms'],
  ['265234', 'MDC_DIM_MILLI_L_PER_MIN', 'mL/min'],
  ['265216', 'MDC_DIM_X_L_PER_MIN', 'L/min'],
];
const UNIT_BY_CODE = new Map(MDC_UNITS.map(([code, , ucum]) => [code, ucum]));
const UNIT_BY_NAME = new Map(MDC_UNITS.map(([, name, ucum]) => [name, ucum]));

/** Plain-text units seen from legacy senders. */
const TEXT_UNITS = new Map([
  ['bpm', '/min'], ['rpm', '/min'], ['/min', '/min'], ['%', '%'], ['mmHg', 'mm[Hg]'], ['mm[Hg]', 'mm[Hg]'],
  ['kPa', 'kPa'], ['℃', 'Cel'], ['°C', 'Cel'], ['C', 'Cel'], ['Cel', 'Cel'], ['mV', 'mV'], ['Hz', 'Hz'],
]);

/**
 * OBX-6 (`code^MDC_DIM_X^MDC`, `/min^^UCUM`, or text) -> UCUM. Returns undefined
 * when OBX-6 is empty; an MDC_DIM unit missing from the table keeps its name.
 */
export function unitToUcum(components: readonly string[]): string | undefined {
  const [id = '', name = '', system = ''] = components;
  if (id === '' && name === '') return undefined;
  if (system.toUpperCase() === 'UCUM') return id || name;
  const known = UNIT_BY_CODE.get(id) ?? UNIT_BY_NAME.get(name) ?? UNIT_BY_NAME.get(id) ?? TEXT_UNITS.get(id) ?? TEXT_UNITS.get(name);
  if (known !== undefined) return known;
  return name || id;
}

export interface ObservationIdentity {
  code: string;
  defaultUnit: string;
  nonNegative: boolean;
  /**
   * Which code system named it: a standard MDC code, a vendor private code
   * (99MNDRY), or a legacy PDS code. Decides which row wins when one message
   * carries the same quantity under two systems (docs/devices/hl7.md, "One
   * reading per measurement").
   */
  system: 'mdc' | 'private' | 'legacy';
}

/**
 * OBX-3 -> the reading code, or undefined for codes we cannot name (skipped).
 * MDC reference ids are kept as the device sent them.
 */
export function identifyObservation(components: readonly string[]): ObservationIdentity | undefined {
  const [id = '', name = '', system = ''] = components;
  const sys = system.toUpperCase();
  if (sys === 'MDC') {
    const code = name.startsWith('MDC_') ? name : MDC_CODES.get(id)?.code;
    if (!code) return undefined;
    const known = MDC_BY_NAME.get(code);
    return { code, defaultUnit: known?.unit ?? '', nonNegative: known?.nonNegative ?? false, system: 'mdc' };
  }
  if (sys === '99MNDRY') {
    const known = MINDRAY_PRIVATE_CODES.get(id);
    if (known) return { code: known.code, defaultUnit: known.unit, nonNegative: known.nonNegative ?? false, system: 'private' };
    return name ? { code: name, defaultUnit: '', nonNegative: false, system: 'private' } : undefined;
  }
  if (sys === '') {
    const legacy = LEGACY_PDS_CODES.get(id);
    if (legacy) return { code: legacy.code, defaultUnit: legacy.unit, nonNegative: legacy.nonNegative ?? false, system: 'legacy' };
  }
  return undefined;
}

/**
 * Attribute rows that qualify an observation rather than being readings: the
 * waveform's sample rate and resolution, and the PCD-04 alarm facets (IHE PCD
 * TF-2 / ACM: facet 3 phase, 4 state, 5 inactivation state, 6 priority, 7 alert
 * type, 8 alert text). `names` also lists the spellings some senders use.
 */
export const ATTRIBUTES = {
  sampleRate: { code: '2436', names: ['MDC_ATTR_SAMP_RATE'] },
  resolution: { code: '2327', names: ['MDC_ATTR_NU_MSMT_RES'] },
  alertSource: { code: '68480', names: ['MDC_ATTR_ALERT_SOURCE'] },
  eventPhase: { code: '68481', names: ['MDC_ATTR_EVENT_PHASE'] },
  alarmState: { code: '68482', names: ['MDC_ATTR_ALARM_STATE', 'MDC_ATTR_ALERT_STATE'] },
  inactivationState: { code: '68483', names: ['MDC_ATTR_ALARM_INACTIVATION_STATE'] },
  alarmPriority: { code: '68484', names: ['MDC_ATTR_ALARM_PRIORITY'] },
  alertType: { code: '68485', names: ['MDC_ATTR_ALERT_TYPE'] },
  alertText: { code: '68546', names: ['MDC_ATTR_ALERT_TEXT'] },
} as const;
export type AttributeKind = keyof typeof ATTRIBUTES;

/** Which attribute an OBX-3 names, if any; any other MDC_ATTR_ row is 'other'. */
export function attributeOf(components: readonly string[]): AttributeKind | 'other' | undefined {
  const [id = '', name = '', system = ''] = components;
  if (system.toUpperCase() !== 'MDC' && !name.startsWith('MDC_ATTR_')) return undefined;
  for (const [kind, attr] of Object.entries(ATTRIBUTES) as [AttributeKind, { code: string; names: readonly string[] }][]) {
    if (attr.names.includes(name) || (name === '' && id === attr.code)) return kind;
  }
  return name.startsWith('MDC_ATTR_') ? 'other' : undefined;
}

/** The event (OBX-3) of a PCD-04 alarm row. */
export const MDC_EVT_ALARM = { code: '196616', name: 'MDC_EVT_ALARM' };

// 11073 FLOAT-Type special values (NaN, NRes, +INF, -INF, reserved) and Mindray sentinels.
const ALWAYS_INVALID = new Set([8388607, -8388608, 8388606, -8388606, -8388607, -999, -99.9]);
const INVALID_WHEN_NON_NEGATIVE = new Set([-1, -100]);

export function isSentinel(value: number, nonNegative: boolean): boolean {
  return ALWAYS_INVALID.has(value) || (nonNegative && INVALID_WHEN_NON_NEGATIVE.has(value));
}

/** Waveform samples: only the 11073 special values mark a missing sample. */
const INVALID_SAMPLES = new Set([8388607, -8388608, 8388606, -8388606, -8388607]);
export function isSampleSentinel(value: number): boolean {
  return INVALID_SAMPLES.has(value);
}

/** PCD-04 priority -> reading priority. */
export function alarmPriority(text: string): 'low' | 'medium' | 'high' | undefined {
  switch (text.toUpperCase()) {
    case 'PH': return 'high';
    case 'PM': return 'medium';
    case 'PL':
    case 'PN': return 'low';
  }
  return undefined;
}
