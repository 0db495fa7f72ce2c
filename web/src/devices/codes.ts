// How monitor numerics are grouped and labelled: IEEE 11073-10101 codes (MDC_*)
// onto the tiles a clinician expects, with UCUM units shown the usual way.
import type { MessageKey } from '../i18n';

export interface NumericSlot {
  id: string;
  label: MessageKey;
  /** Codes that fill this tile, in order of preference. */
  codes: string[];
  /** Monitor colour convention (ECG green, SpO2 cyan, resp yellow, NIBP/temp white). */
  color: string;
  decimals: number;
}

export const NUMERIC_SLOTS: NumericSlot[] = [
  { id: 'hr', label: 'hr', codes: ['MDC_ECG_HEART_RATE', 'MDC_ECG_CARD_BEAT_RATE'], color: '#4ade80', decimals: 0 },
  { id: 'spo2', label: 'spo2', codes: ['MDC_PULS_OXIM_SAT_O2', 'MDC_SAT_O2'], color: '#22d3ee', decimals: 0 },
  { id: 'pr', label: 'pr', codes: ['MDC_PULS_OXIM_PULS_RATE', 'MDC_PULS_RATE'], color: '#22d3ee', decimals: 0 },
  { id: 'rr', label: 'rr', codes: ['MDC_RESP_RATE', 'MDC_TTHOR_RESP_RATE', 'MDC_AWAY_RESP_RATE'], color: '#facc15', decimals: 0 },
  { id: 'temp', label: 'temp', codes: ['MDC_TEMP', 'MDC_TEMP_BODY', 'MDC_TEMP_CORE', 'MDC_TEMP_SKIN', 'MDC_TEMP_ORAL'], color: '#f1f5f9', decimals: 1 },
];

/** NIBP is one tile of three codes: systolic/diastolic (mean). */
export const NIBP_CODES = {
  sys: ['MDC_PRESS_BLD_NONINV_SYS', 'MDC_PRESS_CUFF_SYS'],
  dia: ['MDC_PRESS_BLD_NONINV_DIA', 'MDC_PRESS_CUFF_DIA'],
  mean: ['MDC_PRESS_BLD_NONINV_MEAN', 'MDC_PRESS_CUFF_MEAN'],
} as const;
export const NIBP_COLOR = '#fca5a5';

const NIBP_ALL = new Set<string>([...NIBP_CODES.sys, ...NIBP_CODES.dia, ...NIBP_CODES.mean]);

/** The tile a numeric code belongs to: a slot id, 'nibp', or undefined (shown as an extra tile). */
export function slotOf(code: string): string | undefined {
  if (NIBP_ALL.has(code)) return 'nibp';
  for (const slot of NUMERIC_SLOTS) if (slot.codes.includes(code)) return slot.id;
  if (code.startsWith('MDC_TEMP')) return 'temp';
  return undefined;
}

export interface WaveformStyle {
  label: MessageKey | undefined;
  color: string;
  /** mm per unit at standard gain (ECG 10 mm/mV); undefined = autoscale. */
  mmPerUnit: number | undefined;
}

export function waveformStyle(code: string, unit: string): WaveformStyle {
  if (code.startsWith('MDC_ECG_ELEC_POTL')) {
    // Standard ECG gain: 10 mm per mV.
    const mmPerUnit = unit === 'uV' || unit === 'µV' ? 0.01 : unit === 'mV' ? 10 : undefined;
    return { label: code === 'MDC_ECG_ELEC_POTL_II' ? 'ecgII' : undefined, color: '#4ade80', mmPerUnit };
  }
  if (code.startsWith('MDC_PULS_OXIM_PLETH')) return { label: 'pleth', color: '#22d3ee', mmPerUnit: undefined };
  if (code.includes('RESP') || code.includes('IMPED')) return { label: undefined, color: '#facc15', mmPerUnit: undefined };
  return { label: undefined, color: '#e2e8f0', mmPerUnit: undefined };
}

/** Waveforms are listed ECG lead II first, then other ECG, pleth, the rest. */
export function waveformRank(code: string): number {
  if (code === 'MDC_ECG_ELEC_POTL_II') return 0;
  if (code.startsWith('MDC_ECG_ELEC_POTL')) return 1;
  if (code.startsWith('MDC_PULS_OXIM_PLETH')) return 2;
  return 3;
}

/** UCUM as printed on a monitor. */
export function displayUnit(unit: string, slotId?: string): string {
  switch (unit) {
    case '/min':
      return slotId === 'rr' ? 'rpm' : 'bpm';
    case 'mm[Hg]':
      return 'mmHg';
    case 'Cel':
      return '°C';
    case '[degF]':
      return '°F';
    case 'uV':
      return 'µV';
    default:
      return unit;
  }
}

/** A readable name for a code without a tile: MDC_CONC_AWAY_CO2_ET -> CONC AWAY CO2 ET. */
export function shortCodeName(code: string): string {
  return code.replace(/^MDC_/, '').replace(/_/g, ' ');
}
