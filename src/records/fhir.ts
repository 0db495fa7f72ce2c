// A consultation session as a FHIR R4 Bundle (docs/RECORDS.md, "FHIR
// mapping"). Pure: rows in, JSON out. Resource ids are UUIDs derived from the
// session and what the resource is, so the same session always gives the
// same ids and a transaction of PUTs can be repeated safely (the outbox
// retries until the server accepts it).

import { createHash } from 'node:crypto';
import { MDC_CODES } from '../devices/hl7/codes.js';
import type { AlarmRow, NumericRow, RecordingRow, SessionDetail, SessionDeviceRow, WaveformRow } from './RecordsStore.js';

/** Numeric and waveform Observations in one Bundle, at most (the API and the outbox). */
export const MAX_BUNDLE_OBSERVATIONS = 20_000;

export const MDC_SYSTEM = 'urn:iso:std:iso:11073:10101';
export const LOINC_SYSTEM = 'http://loinc.org';
export const UCUM_SYSTEM = 'http://unitsofmeasure.org';
/** Hoichan's own identifiers and codes (session, device, user ids; alarm priority). */
export const HOICHAN_SYSTEM = 'urn:hoichan';

/** MDC reference id -> numeric term code (CF_CODE10), where the hub's code table knows it. */
const MDC_NUMERIC = new Map([...MDC_CODES].map(([numeric, info]) => [info.code, numeric]));

/** LOINC codes for the vital signs the monitors send (the FHIR vital-signs profile's, where it names one). */
export const LOINC: ReadonlyMap<string, { code: string; display: string }> = new Map([
  ['MDC_ECG_HEART_RATE', { code: '8867-4', display: 'Heart rate' }],
  ['MDC_PULS_OXIM_PULS_RATE', { code: '8889-8', display: 'Heart rate by Pulse oximetry' }],
  ['MDC_PULS_OXIM_SAT_O2', { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' }],
  ['MDC_RESP_RATE', { code: '9279-1', display: 'Respiratory rate' }],
  ['MDC_TTHOR_RESP_RATE', { code: '9279-1', display: 'Respiratory rate' }],
  ['MDC_TEMP', { code: '8310-5', display: 'Body temperature' }],
  ['MDC_PRESS_BLD_NONINV_SYS', { code: '8480-6', display: 'Systolic blood pressure' }],
  ['MDC_PRESS_BLD_NONINV_DIA', { code: '8462-4', display: 'Diastolic blood pressure' }],
  ['MDC_PRESS_BLD_NONINV_MEAN', { code: '8478-0', display: 'Mean blood pressure' }],
  ['MDC_PRESS_CUFF_SYS', { code: '8480-6', display: 'Systolic blood pressure' }],
  ['MDC_PRESS_CUFF_DIA', { code: '8462-4', display: 'Diastolic blood pressure' }],
  ['MDC_PRESS_CUFF_MEAN', { code: '8478-0', display: 'Mean blood pressure' }],
  ['MDC_PRESS_BLD_ART_ABP_SYS', { code: '76215-3', display: 'Invasive Systolic blood pressure' }],
  ['MDC_PRESS_BLD_ART_ABP_DIA', { code: '76213-8', display: 'Invasive Diastolic blood pressure' }],
  ['MDC_PRESS_BLD_ART_ABP_MEAN', { code: '76214-6', display: 'Invasive Mean blood pressure' }],
  ['MDC_CONC_AWAY_CO2_ET', { code: '19891-1', display: 'Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration' }],
]);

export type FhirResource = { resourceType: string; id: string } & Record<string, unknown>;
export interface BundleEntry {
  fullUrl: string;
  resource: FhirResource;
  request?: { method: 'PUT'; url: string };
}
export interface Bundle {
  resourceType: 'Bundle';
  id: string;
  type: 'collection' | 'transaction';
  timestamp: string;
  entry: BundleEntry[];
}

export interface BundleInput {
  detail: SessionDetail;
  numerics: readonly NumericRow[];
  waveforms: readonly WaveformRow[];
  type: 'collection' | 'transaction';
  /** When the bundle is made (Bundle.timestamp). */
  now: number;
}

/** A name-based UUID (RFC 4122 version 5 layout over SHA-1): the same parts give the same id. */
export function stableId(...parts: string[]): string {
  const hash = createHash('sha1').update(parts.join('\u0000')).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const ref = (id: string) => ({ reference: `urn:uuid:${id}` });
function period(start: number, end: number | null): { start: string; end?: string } {
  return end === null ? { start: iso(start) } : { start: iso(start), end: iso(end) };
}

/** The MDC coding of a reading code: the numeric term code where known, else the reference id itself. */
export function mdcCoding(code: string): { system: string; code: string; display: string } {
  return { system: MDC_SYSTEM, code: MDC_NUMERIC.get(code) ?? code, display: code };
}

function quantity(value: number, unit: string): Record<string, unknown> {
  // A dimensionless quantity is UCUM '1'.
  const ucum = unit === '' ? '1' : unit;
  return { value, unit: ucum, system: UCUM_SYSTEM, code: ucum };
}

export function sessionBundle({ detail, numerics, waveforms, type, now }: BundleInput): Bundle {
  const { session } = detail;
  const entries: BundleEntry[] = [];
  const add = (resource: FhirResource) => {
    entries.push({ fullUrl: `urn:uuid:${resource.id}`, resource, ...(type === 'transaction' ? { request: { method: 'PUT' as const, url: `${resource.resourceType}/${resource.id}` } } : {}) });
  };
  const encounterId = stableId('encounter', session.id);
  const sites = [...new Set([...detail.participants.map((p) => p.siteId), ...detail.devices.map((d) => d.siteId)].filter((s): s is string => s !== null))].sort();
  add({
    resourceType: 'Encounter',
    id: encounterId,
    identifier: [{ system: `${HOICHAN_SYSTEM}:session`, value: session.id }],
    status: session.endedAt === null ? 'in-progress' : 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR', display: 'virtual' },
    type: [{ text: 'Telemedicine case conference' }],
    period: period(session.startedAt, session.endedAt),
    ...(session.endedAt !== null ? { length: { value: Math.round((session.endedAt - session.startedAt) / 60_000), unit: 'min', system: UCUM_SYSTEM, code: 'min' } } : {}),
    ...(detail.participants.length > 0
      ? {
          participant: detail.participants.map((p) => ({
            type: [
              {
                coding: [
                  p.role === 'specialist'
                    ? { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'CON', display: 'consultant' }
                    : { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PART', display: 'Participation' },
                ],
                text: p.role,
              },
            ],
            period: period(p.joinedAt, p.leftAt ?? session.endedAt),
            individual: { identifier: { system: `${HOICHAN_SYSTEM}:user`, value: p.userId }, display: p.displayName },
          })),
        }
      : {}),
    ...(sites.length > 0 ? { location: sites.map((site) => ({ location: { identifier: { system: `${HOICHAN_SYSTEM}:site`, value: site }, display: site } })) } : {}),
    serviceProvider: { identifier: { system: `${HOICHAN_SYSTEM}:hub`, value: session.hubId }, display: `Hoichan hub ${session.hubId}` },
  });

  const deviceIds = new Map<string, string>();
  const metricIds = new Map<string, string>();
  for (const d of detail.devices) {
    const deviceId = stableId('device', session.id, d.deviceId);
    deviceIds.set(d.deviceId, deviceId);
    add(deviceResource(deviceId, d));
    const channels = new Map(d.channels.map((c) => [c.code, c]));
    // Channels the device announced, and any code it sent a stored reading for.
    for (const n of numerics) if (n.deviceId === d.deviceId && !channels.has(n.code)) channels.set(n.code, { code: n.code, unit: n.unit, kind: 'numeric' });
    for (const w of waveforms) if (w.deviceId === d.deviceId && !channels.has(w.code)) channels.set(w.code, { code: w.code, unit: w.unit, kind: 'waveform' });
    for (const c of channels.values()) {
      if (c.kind !== 'numeric' && c.kind !== 'waveform') continue;
      const metricId = stableId('metric', session.id, d.deviceId, c.code);
      metricIds.set(`${d.deviceId}\u0000${c.code}`, metricId);
      add({
        resourceType: 'DeviceMetric',
        id: metricId,
        identifier: [{ system: `${HOICHAN_SYSTEM}:channel`, value: `${d.deviceId}/${c.code}` }],
        type: { coding: [mdcCoding(c.code)], text: c.code },
        ...(c.unit !== '' ? { unit: { coding: [{ system: UCUM_SYSTEM, code: c.unit }], text: c.unit } } : {}),
        source: ref(deviceId),
        operationalStatus: 'on',
        category: 'measurement',
      });
    }
  }
  const observationDevice = (deviceId: string, code: string) => {
    const metric = metricIds.get(`${deviceId}\u0000${code}`);
    if (metric) return ref(metric);
    const device = deviceIds.get(deviceId);
    return device ? ref(device) : undefined;
  };

  for (const n of numerics) add(numericObservation(n, encounterId, observationDevice(n.deviceId, n.code)));
  for (const w of waveforms) add(waveformObservation(w, encounterId, observationDevice(w.deviceId, w.code)));
  for (const a of detail.alarms) add(alarmObservation(a, encounterId, deviceIds.get(a.deviceId)));
  for (const r of detail.recordings) add(recordingMedia(r, encounterId));

  return {
    resourceType: 'Bundle',
    id: stableId('bundle', session.id, type),
    type,
    timestamp: iso(now),
    entry: entries,
  };
}

function deviceResource(id: string, d: SessionDeviceRow): FhirResource {
  return {
    resourceType: 'Device',
    id,
    identifier: [{ system: `${HOICHAN_SYSTEM}:device`, value: d.deviceId }],
    status: 'active',
    ...(d.model !== '' ? { deviceName: [{ name: d.model, type: 'model-name' }], modelNumber: d.model } : {}),
    type: { text: d.type },
    property: [
      { type: { text: 'protocol' }, valueCode: [{ text: d.protocol || 'unknown' }] },
      { type: { text: 'readings received' }, valueQuantity: [{ value: d.readings }] },
      { type: { text: 'readings lost at the site' }, valueQuantity: [{ value: d.missingReadings }] },
      { type: { text: 'time online' }, valueQuantity: [{ value: Math.round(d.onlineMs / 1000), unit: 's', system: UCUM_SYSTEM, code: 's' }] },
    ],
    location: { identifier: { system: `${HOICHAN_SYSTEM}:site`, value: d.siteId }, display: d.siteId },
  };
}

function numericObservation(n: NumericRow, encounterId: string, device: { reference: string } | undefined): FhirResource {
  const loinc = LOINC.get(n.code);
  return {
    resourceType: 'Observation',
    id: stableId('numeric', n.sessionId, n.deviceId, n.code, String(n.t)),
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { coding: [...(loinc ? [{ system: LOINC_SYSTEM, code: loinc.code, display: loinc.display }] : []), mdcCoding(n.code)], text: loinc?.display ?? n.code },
    encounter: ref(encounterId),
    effectiveDateTime: iso(n.t),
    ...(n.value === null
      ? { dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'error', display: 'Error' }], text: 'the device sent an invalid-value marker' } }
      : { valueQuantity: quantity(n.value, n.unit) }),
    ...(device ? { device } : {}),
  };
}

/**
 * valueSampledData: value = origin + factor * data. The factor is the
 * smallest power of ten (down to 1e-6) that makes every sample an integer, so
 * data carries no decimals; an invalid sample is "E".
 */
export function sampledData(samples: readonly (number | null)[], sampleRate: number, unit: string): Record<string, unknown> {
  let decimals = 0;
  for (const s of samples) {
    if (s === null) continue;
    while (decimals < 6 && Math.abs(Math.round(s * 10 ** decimals) - s * 10 ** decimals) > 1e-6) decimals++;
  }
  const scale = 10 ** decimals;
  const data = samples.map((s) => (s === null ? 'E' : String(Math.round(s * scale)))).join(' ');
  return {
    origin: quantity(0, unit),
    period: Math.round((1000 / sampleRate) * 1e6) / 1e6,
    ...(decimals > 0 ? { factor: Number((1 / scale).toFixed(decimals)) } : {}),
    dimensions: 1,
    data,
  };
}

function waveformObservation(w: WaveformRow, encounterId: string, device: { reference: string } | undefined): FhirResource {
  const end = w.t + Math.round((w.samples.length * 1000) / w.sampleRate);
  return {
    resourceType: 'Observation',
    id: stableId('waveform', w.sessionId, w.deviceId, w.code, String(w.t)),
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'procedure', display: 'Procedure' }], text: 'waveform' }],
    code: { coding: [mdcCoding(w.code)], text: w.code },
    encounter: ref(encounterId),
    effectivePeriod: period(w.t, end),
    valueSampledData: sampledData(w.samples, w.sampleRate, w.unit),
    ...(device ? { device } : {}),
  };
}

function alarmObservation(a: AlarmRow, encounterId: string, device: string | undefined): FhirResource {
  return {
    resourceType: 'Observation',
    id: stableId('alarm', a.sessionId, a.id),
    identifier: [{ system: `${HOICHAN_SYSTEM}:alarm`, value: a.alarmKey }],
    status: 'final',
    category: [{ coding: [{ system: `${HOICHAN_SYSTEM}:observation-category`, code: 'alarm', display: 'Device alarm' }] }],
    code: { coding: [mdcCoding(a.code)], text: a.text },
    encounter: ref(encounterId),
    effectivePeriod: period(a.startedAt, a.endedAt),
    valueString: a.text,
    ...(a.priority === 'high' ? { interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'AA', display: 'Critical abnormal' }] }] } : {}),
    component: [
      {
        code: { coding: [{ system: `${HOICHAN_SYSTEM}:alarm`, code: 'priority', display: 'Alarm priority' }] },
        valueCodeableConcept: { coding: [{ system: `${HOICHAN_SYSTEM}:alarm-priority`, code: a.priority, display: a.priority }] },
      },
      ...(a.source
        ? [
            {
              code: { coding: [mdcCoding(a.source.code)], text: a.source.code },
              ...(a.source.value === null
                ? { dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'error' }] } }
                : { valueQuantity: quantity(a.source.value, a.source.unit) }),
            },
          ]
        : []),
    ],
    ...(device ? { device: ref(device) } : {}),
  };
}

function recordingMedia(r: RecordingRow, encounterId: string): FhirResource {
  return {
    resourceType: 'Media',
    id: stableId('media', r.sessionId, r.id),
    identifier: [{ system: `${HOICHAN_SYSTEM}:recording`, value: r.id }],
    status: r.endedAt === null ? 'in-progress' : 'completed',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/media-type', code: r.trackKind === 'audio' ? 'audio' : 'video' }] },
    encounter: ref(encounterId),
    createdPeriod: period(r.startedAt, r.endedAt),
    content: { contentType: r.mimeType, title: r.filePath.split('/').pop() ?? r.id, ...(r.bytes !== null ? { size: r.bytes } : {}) },
  };
}
