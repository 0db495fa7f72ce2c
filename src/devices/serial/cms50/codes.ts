/** IEEE 11073-10101 codes and UCUM units the CMS50D+ driver emits. */
export const CMS50_CODES = {
  spo2: 'MDC_PULS_OXIM_SAT_O2',
  pulseRate: 'MDC_PULS_OXIM_PULS_RATE',
  pleth: 'MDC_PULS_OXIM_PLETH',
  /** 196916: finger out of the probe. */
  fingerOut: 'MDC_EVT_SENSOR_DISCONN',
  /** 196918: probe error. */
  probeError: 'MDC_EVT_SENSOR_MALF',
} as const;

export const CMS50_UNITS = {
  spo2: '%',
  pulseRate: '/min',
  /** Dimensionless relative amplitude; '' is the reading model's unitless unit (UCUM '1'). */
  pleth: '',
  status: '',
} as const;
