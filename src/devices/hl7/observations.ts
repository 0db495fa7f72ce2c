// ORU observations (PCD-01 numerics and waveforms, PCD-04 alarms, legacy PDS
// numerics) -> ReadingBody values. Pure: no sockets, no devices, no clock.

import type { AlarmBody, NumericBody, ReadingBody, WaveformBody } from '../reading.js';
import { normalizeEquipmentId } from './config.js';
import {
  MDC_EVT_ALARM,
  alarmPriority,
  attributeOf,
  identifyObservation,
  isSampleSentinel,
  isSentinel,
  unitToUcum,
} from './codes.js';
import { Hl7Reader, type Hl7Message, type Hl7Segment } from './message.js';
import { parseHl7Time } from './time.js';

/** A framed, well-formed message whose content we cannot turn into readings (-> AE). */
export class Hl7ContentError extends Error {
  override name = 'Hl7ContentError';
}

export interface MessageHeader {
  controlId: string;
  /** e.g. 'ORU^R01' (MSH-9.1 ^ MSH-9.2). */
  messageType: string;
  processingId: string;
  version: string;
  /** Decoded components of MSH-3..6, swapped into the ACK. */
  sendingApplication: string[];
  sendingFacility: string[];
  receivingApplication: string[];
  receivingFacility: string[];
  time: number | undefined;
  /** MSH-3.2 when MSH-3.3 says EUI-64: the sender's own id. */
  senderEquipmentId: string | undefined;
}

export interface Observation {
  /** OBX-18 (or inherited / MSH-3) equipment id, normalized. */
  equipmentId: string | undefined;
  body: ReadingBody;
}

export interface InterpretedMessage {
  observations: Observation[];
  /** OBX rows we could not name or that carry no reading (counted, not fatal). */
  skipped: number;
}

export function readHeader(message: Hl7Message, offsetMinutes: number): MessageHeader {
  const reader = new Hl7Reader(message.encoding);
  const msh = message.segments[0]!;
  const type = reader.components(msh, 9);
  const msh3 = reader.components(msh, 3);
  return {
    controlId: reader.value(msh, 10),
    messageType: type.length > 1 ? `${type[0]}^${type[1]}` : (type[0] ?? ''),
    processingId: reader.value(msh, 11),
    version: reader.value(msh, 12),
    sendingApplication: msh3,
    sendingFacility: reader.components(msh, 4),
    receivingApplication: reader.components(msh, 5),
    receivingFacility: reader.components(msh, 6),
    time: parseHl7Time(reader.value(msh, 7), offsetMinutes),
    senderEquipmentId: msh3[2]?.toUpperCase() === 'EUI-64' && msh3[1] ? normalizeEquipmentId(msh3[1]) : undefined,
  };
}

/** The equipment id a message is about (first OBX-18, else MSH-3 EUI-64), without interpreting it. */
export function firstEquipmentId(message: Hl7Message, header: MessageHeader): string | undefined {
  const reader = new Hl7Reader(message.encoding);
  for (const seg of message.segments) {
    if (seg.name !== 'OBX') continue;
    const id = reader.value(seg, 18);
    if (id) return normalizeEquipmentId(id);
  }
  return header.senderEquipmentId;
}

interface WaveformDraft {
  kind: 'waveform';
  equipmentId: string | undefined;
  code: string;
  unit: string;
  t: number;
  raw: (number | null)[];
  sampleRate?: number;
  resolution?: number;
  resolutionUnit?: string;
  setId: string;
}

interface AlarmDraft {
  kind: 'alarm';
  equipmentId: string | undefined;
  code: string;
  text: string;
  t: number;
  flagPriority: AlarmBody['priority'] | undefined;
  priority?: AlarmBody['priority'];
  phase?: string;
  state?: string;
}

type Draft = WaveformDraft | AlarmDraft | { kind: 'numeric'; equipmentId: string | undefined; body: NumericBody };

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!NUMBER.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
}

/** raw x resolution, rounded to 12 significant digits so binary noise (0.09768000000000001) does not leak. */
export function scaleSample(raw: number, resolution: number): number {
  return resolution === 1 ? raw : Number((raw * resolution).toPrecision(12));
}

const ENDED_PHASES = new Set(['end', 'inactivate', 'reset']);

/**
 * Turns every OBX of an ORU message into readings. Throws Hl7ContentError on
 * the first row it cannot take, so a message yields all its readings or none.
 */
export function interpretObservations(
  message: Hl7Message,
  header: MessageHeader,
  offsetMinutes: number,
  receivedAt: number,
): InterpretedMessage {
  const reader = new Hl7Reader(message.encoding);
  const drafts: Draft[] = [];
  let skipped = 0;
  let obrTime: number | undefined;
  const messageEquipment = firstEquipmentId(message, header);
  let equipmentId = messageEquipment;
  let lastWaveform: WaveformDraft | undefined;
  let lastAlarm: AlarmDraft | undefined;

  for (const seg of message.segments) {
    if (seg.name === 'OBR') {
      obrTime = parseHl7Time(reader.value(seg, 7), offsetMinutes);
      continue;
    }
    if (seg.name !== 'OBX') continue;
    const setId = reader.value(seg, 1) || '?';
    const id = reader.components(seg, 3);
    const ownEquipment = reader.value(seg, 18);
    if (ownEquipment) equipmentId = normalizeEquipmentId(ownEquipment);
    const t = parseHl7Time(reader.value(seg, 14), offsetMinutes) ?? obrTime ?? header.time ?? receivedAt;

    const attribute = attributeOf(id);
    if (attribute) {
      applyAttribute(attribute, seg, setId, reader, lastWaveform, lastAlarm);
      continue;
    }
    const valueType = reader.value(seg, 2).toUpperCase();

    if ((valueType === 'CWE' || valueType === 'CE') && isAlarmEvent(id)) {
      const event = reader.components(seg, 5);
      const code = event[1] || (event[0] ? `MDC_EVT_${event[0]}` : '');
      if (!code) throw new Hl7ContentError(`OBX ${setId}: alarm without an event code`);
      const flags = reader.repetitions(seg, 8);
      lastAlarm = {
        kind: 'alarm',
        equipmentId,
        code,
        text: event[8] || event[4] || code,
        t,
        flagPriority: flags.map(alarmPriority).find((p) => p !== undefined),
      };
      lastWaveform = undefined;
      drafts.push(lastAlarm);
      continue;
    }

    const identity = valueType === 'NM' || valueType === 'NA' ? identifyObservation(id) : undefined;
    if (!identity) {
      skipped++;
      continue;
    }
    const unit = unitToUcum(reader.components(seg, 6)) ?? identity.defaultUnit;
    const resultStatus = reader.value(seg, 11).toUpperCase();

    if (valueType === 'NM') {
      const text = reader.value(seg, 5);
      let value: number | null = null;
      if (text !== '' && resultStatus !== 'X') {
        const n = parseNumber(text);
        if (n === undefined) throw new Hl7ContentError(`OBX ${setId}: NM value is not a number`);
        value = isSentinel(n, identity.nonNegative) ? null : n;
      }
      drafts.push({ kind: 'numeric', equipmentId, body: { kind: 'numeric', code: identity.code, unit, t, rt: receivedAt, value } });
      lastWaveform = undefined;
      lastAlarm = undefined;
      continue;
    }

    // NA: samples are components of OBX-5.
    const raw = reader.rawComponents(seg, 5).map((text) => {
      if (text === '') return null;
      const n = parseNumber(text);
      if (n === undefined) throw new Hl7ContentError(`OBX ${setId}: NA sample is not a number`);
      return isSampleSentinel(n) ? null : n;
    });
    lastWaveform = { kind: 'waveform', equipmentId, code: identity.code, unit, t, raw, setId };
    lastAlarm = undefined;
    drafts.push(lastWaveform);
  }

  const observations = drafts.map((d): Observation => {
    if (d.kind === 'numeric') return { equipmentId: d.equipmentId, body: d.body };
    if (d.kind === 'waveform') return { equipmentId: d.equipmentId, body: finishWaveform(d, receivedAt) };
    return { equipmentId: d.equipmentId, body: finishAlarm(d, receivedAt) };
  });
  return { observations, skipped };
}

function isAlarmEvent(id: readonly string[]): boolean {
  const [code = '', name = ''] = id;
  return name === MDC_EVT_ALARM.name || (name === '' && code === MDC_EVT_ALARM.code);
}

function applyAttribute(
  attribute: ReturnType<typeof attributeOf>,
  seg: Hl7Segment,
  setId: string,
  reader: Hl7Reader,
  waveform: WaveformDraft | undefined,
  alarm: AlarmDraft | undefined,
): void {
  const text = reader.value(seg, 5);
  switch (attribute) {
    case 'sampleRate':
    case 'resolution': {
      if (!waveform) return;
      const n = parseNumber(text);
      if (n === undefined || n <= 0) throw new Hl7ContentError(`OBX ${setId}: bad ${attribute === 'sampleRate' ? 'sample rate' : 'resolution'}`);
      if (attribute === 'sampleRate') waveform.sampleRate = n;
      else {
        waveform.resolution = n;
        waveform.resolutionUnit = unitToUcum(reader.components(seg, 6));
      }
      return;
    }
    case 'eventPhase':
      if (alarm) alarm.phase = text.toLowerCase();
      return;
    case 'alarmState':
      if (alarm) alarm.state = text.toLowerCase();
      return;
    case 'alarmPriority':
      if (alarm) alarm.priority = alarmPriority(text);
      return;
    default:
      return;
  }
}

function finishWaveform(d: WaveformDraft, receivedAt: number): WaveformBody {
  if (d.sampleRate === undefined) throw new Hl7ContentError(`OBX ${d.setId}: waveform without MDC_ATTR_SAMP_RATE`);
  const resolution = d.resolution ?? 1;
  return {
    kind: 'waveform',
    code: d.code,
    unit: d.resolutionUnit ?? d.unit,
    t: d.t,
    rt: receivedAt,
    sampleRate: d.sampleRate,
    samples: d.raw.map((r) => (r === null ? null : scaleSample(r, resolution))),
  };
}

function finishAlarm(d: AlarmDraft, receivedAt: number): AlarmBody {
  const active = d.state !== undefined ? d.state === 'active' : !(d.phase !== undefined && ENDED_PHASES.has(d.phase));
  const body: AlarmBody = {
    kind: 'alarm',
    code: d.code,
    unit: '',
    t: d.t,
    rt: receivedAt,
    priority: d.priority ?? d.flagPriority ?? 'medium',
    text: d.text,
    active,
  };
  if (d.phase !== undefined) body.phase = d.phase;
  return body;
}
