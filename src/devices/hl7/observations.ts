// ORU observations (PCD-01 numerics and waveforms, PCD-04 alarms, legacy PDS
// numerics) -> ReadingBody values. Pure: no sockets, no devices, no clock.

import type { AlarmBody, AlarmSource, NumericBody, ReadingBody, WaveformBody } from '../reading.js';
import { normalizeEquipmentId } from './config.js';
import {
  MDC_EVT_ALARM,
  alarmPriority,
  attributeOf,
  identifyObservation,
  isSampleSentinel,
  isSentinel,
  unitToUcum,
  type AttributeKind,
  type ObservationIdentity,
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
  /** Index of the event row among the message's OBX rows. */
  row: number;
  code: string;
  /** The event's CWE text (original or alternate text) or its code. */
  eventText: string;
  t: number;
  flagPriority: AlarmBody['priority'] | undefined;
  /** OBX-4 of the event row without its facet index: the group's key. */
  prefix?: string;
  priority?: AlarmBody['priority'];
  phase?: string;
  state?: string;
  alertText?: string;
  source?: AlarmSource;
  /** OBX-4 of the source row, the instance when the group has no prefix. */
  sourceInstance?: string;
}

interface NumericDraft {
  kind: 'numeric';
  equipmentId: string | undefined;
  system: ObservationIdentity['system'];
  body: NumericBody;
}

type Draft = WaveformDraft | AlarmDraft | NumericDraft;

/** One OBX with the context it inherits from the rows and OBR before it. */
interface ObxRow {
  seg: Hl7Segment;
  setId: string;
  /** OBX-3 components. */
  id: string[];
  valueType: string;
  /** OBX-4, '' when not sent. */
  subId: string;
  equipmentId: string | undefined;
  t: number;
  /** Ordinal of the OBR this row sits under (0 before any OBR). */
  obr: number;
}

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

const ENDED_PHASES = new Set(['end', 'stop', 'inactivate', 'reset']);
/** A waveform's attribute rows; every other MDC_ATTR_ row qualifies the alarm it follows or whose group it is in. */
const WAVEFORM_ATTRIBUTES = new Set<AttributeKind | 'other'>(['sampleRate', 'resolution']);

// Bounds of the uplink's alarm schema (src/streams/protocol.ts): a monitor's long text is clipped, not refused.
export const MAX_ALARM_TEXT = 512;
const MAX_CODE = 128;
const MAX_UNIT = 64;
const MAX_INSTANCE = 64;
const MAX_STATE = 64;

/**
 * Turns every OBX of an ORU message into readings. Throws Hl7ContentError on
 * the first row it cannot take, so a message yields all its readings or none.
 *
 * Alarm groups (IHE PCD-04 / ACM) are read by their OBX-4 hierarchy: the event
 * row's sub-id is `MDS.VMD.CHAN.METRIC.facet`, and every row under the same OBR
 * whose sub-id is `<same prefix>.<facet>` belongs to that alarm, wherever it
 * sits in the message. Rows without a sub-id fall back to row order.
 */
export function interpretObservations(
  message: Hl7Message,
  header: MessageHeader,
  offsetMinutes: number,
  receivedAt: number,
): InterpretedMessage {
  const reader = new Hl7Reader(message.encoding);
  const rows = collectRows(message, reader, header, offsetMinutes, receivedAt);

  // First pass: every alarm event row and the group its sub-id opens, so rows
  // that come before their event row still find it.
  const alarmAt = new Map<number, AlarmDraft>();
  const groups = new Map<string, AlarmDraft[]>();
  rows.forEach((row, i) => {
    if (!isAlarmEventRow(row)) return;
    const draft = alarmDraft(row, i, reader);
    alarmAt.set(i, draft);
    const prefix = groupPrefix(row.subId);
    if (prefix === undefined) return;
    draft.prefix = prefix;
    const key = `${row.obr}|${prefix}`;
    const list = groups.get(key);
    if (list) list.push(draft);
    else groups.set(key, [draft]);
  });
  const groupOf = (row: ObxRow, index: number): AlarmDraft | undefined => {
    const prefix = groupPrefix(row.subId);
    if (prefix === undefined) return undefined;
    const list = groups.get(`${row.obr}|${prefix}`);
    if (!list) return undefined;
    // Two event rows with one prefix (a sender that reuses 1.0.0.0): a row goes with the event row before it.
    let owner = list[0]!;
    for (const d of list) if (d.row < index) owner = d;
    return owner;
  };

  const drafts: Draft[] = [];
  let skipped = 0;
  let lastWaveform: WaveformDraft | undefined;
  /** The alarm that rows without a matching sub-id attach to, in row order (older senders). */
  let lastAlarm: AlarmDraft | undefined;

  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const { seg, setId, id, valueType, equipmentId, t } = row;

    const event = alarmAt.get(i);
    if (event) {
      drafts.push(event);
      lastAlarm = event;
      lastWaveform = undefined;
      continue;
    }

    const attribute = attributeOf(id);
    const member = groupOf(row, i);
    if (member) {
      if (attribute) applyAlarmAttribute(member, attribute, row, reader);
      else if (member.source === undefined) setSource(member, row, reader);
      else skipped++;
      continue;
    }

    if (attribute) {
      if (WAVEFORM_ATTRIBUTES.has(attribute)) applyWaveformAttribute(attribute, row, reader, lastWaveform);
      // A row whose sub-id names another group than the open alarm's is not that alarm's.
      else if (lastAlarm && !(row.subId !== '' && lastAlarm.prefix !== undefined)) applyAlarmAttribute(lastAlarm, attribute, row, reader);
      continue;
    }

    // Without facet sub-ids, the parameter row right after the event row (ACM facet 2)
    // is the alarm's source when alarm attribute rows follow it: it must not end the group.
    if (lastAlarm && lastAlarm.source === undefined && lastAlarm.prefix === undefined && alarmAttributeFollows(rows, i)) {
      setSource(lastAlarm, row, reader);
      continue;
    }

    const identity = valueType === 'NM' || valueType === 'NA' ? identifyObservation(id) : undefined;
    if (!identity) {
      skipped++;
      continue;
    }
    const unit = unitToUcum(reader.components(seg, 6)) ?? identity.defaultUnit;
    const resultStatus = reader.value(seg, 11).toUpperCase();
    lastAlarm = undefined;

    if (valueType === 'NM') {
      const value = numericValue(reader.value(seg, 5), resultStatus, identity.nonNegative, setId);
      drafts.push({ kind: 'numeric', equipmentId, system: identity.system, body: { kind: 'numeric', code: identity.code, unit, t, rt: receivedAt, value } });
      lastWaveform = undefined;
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
    drafts.push(lastWaveform);
  }

  const kept = onePerMeasurement(drafts);
  skipped += drafts.length - kept.length;
  const observations = kept.map((d): Observation => {
    if (d.kind === 'numeric') return { equipmentId: d.equipmentId, body: d.body };
    if (d.kind === 'waveform') return { equipmentId: d.equipmentId, body: finishWaveform(d, receivedAt) };
    return { equipmentId: d.equipmentId, body: finishAlarm(d, receivedAt) };
  });
  return { observations, skipped };
}

function collectRows(message: Hl7Message, reader: Hl7Reader, header: MessageHeader, offsetMinutes: number, receivedAt: number): ObxRow[] {
  const rows: ObxRow[] = [];
  let obrTime: number | undefined;
  let obr = 0;
  let equipmentId = firstEquipmentId(message, header);
  for (const seg of message.segments) {
    if (seg.name === 'OBR') {
      obr++;
      obrTime = parseHl7Time(reader.value(seg, 7), offsetMinutes);
      continue;
    }
    if (seg.name !== 'OBX') continue;
    const ownEquipment = reader.value(seg, 18);
    if (ownEquipment) equipmentId = normalizeEquipmentId(ownEquipment);
    rows.push({
      seg,
      setId: reader.value(seg, 1) || '?',
      id: reader.components(seg, 3),
      valueType: reader.value(seg, 2).toUpperCase(),
      subId: reader.value(seg, 4).trim(),
      equipmentId,
      t: parseHl7Time(reader.value(seg, 14), offsetMinutes) ?? obrTime ?? header.time ?? receivedAt,
      obr,
    });
  }
  return rows;
}

function isAlarmEventRow(row: ObxRow): boolean {
  if (row.valueType !== 'CWE' && row.valueType !== 'CE') return false;
  const [code = '', name = ''] = row.id;
  return name === MDC_EVT_ALARM.name || (name === '' && code === MDC_EVT_ALARM.code);
}

function alarmDraft(row: ObxRow, index: number, reader: Hl7Reader): AlarmDraft {
  const event = reader.components(row.seg, 5);
  const code = event[1] || (event[0] ? `MDC_EVT_${event[0]}` : '');
  if (!code) throw new Hl7ContentError(`OBX ${row.setId}: alarm without an event code`);
  return {
    kind: 'alarm',
    equipmentId: row.equipmentId,
    row: index,
    code,
    eventText: event[8] || event[4] || code,
    t: row.t,
    flagPriority: reader.repetitions(row.seg, 8).map(alarmPriority).find((p) => p !== undefined),
  };
}

/**
 * `1.3.1.150456.3` -> `1.3.1.150456`. Only a sub-id of at least five parts
 * (MDS.VMD.CHAN.METRIC.facet) has a facet: a PCD-01 numeric's four-part
 * `1.3.1.150456` is never taken for a member of some alarm's group.
 */
function groupPrefix(subId: string): string | undefined {
  if (subId.split('.').length < 5) return undefined;
  return subId.slice(0, subId.lastIndexOf('.'));
}

function alarmAttributeFollows(rows: readonly ObxRow[], index: number): boolean {
  const next = rows[index + 1];
  if (!next || next.obr !== rows[index]!.obr) return false;
  const attribute = attributeOf(next.id);
  return attribute !== undefined && !WAVEFORM_ATTRIBUTES.has(attribute);
}

function numericValue(text: string, resultStatus: string, nonNegative: boolean, setId: string): number | null {
  if (text === '' || resultStatus === 'X') return null;
  const n = parseNumber(text);
  if (n === undefined) throw new Hl7ContentError(`OBX ${setId}: NM value is not a number`);
  return isSentinel(n, nonNegative) ? null : n;
}

function applyWaveformAttribute(attribute: AttributeKind | 'other', row: ObxRow, reader: Hl7Reader, waveform: WaveformDraft | undefined): void {
  if (!waveform) return;
  const n = parseNumber(reader.value(row.seg, 5));
  if (n === undefined || n <= 0) throw new Hl7ContentError(`OBX ${row.setId}: bad ${attribute === 'sampleRate' ? 'sample rate' : 'resolution'}`);
  if (attribute === 'sampleRate') waveform.sampleRate = n;
  else {
    waveform.resolution = n;
    waveform.resolutionUnit = unitToUcum(reader.components(row.seg, 6));
  }
}

function applyAlarmAttribute(alarm: AlarmDraft, attribute: AttributeKind | 'other', row: ObxRow, reader: Hl7Reader): void {
  const text = () => reader.value(row.seg, 5).trim().toLowerCase().slice(0, MAX_STATE);
  switch (attribute) {
    case 'eventPhase':
      alarm.phase = text() || alarm.phase;
      return;
    case 'alarmState':
      alarm.state = text() || alarm.state;
      return;
    case 'alarmPriority':
      alarm.priority = alarmPriority(reader.value(row.seg, 5).trim()) ?? alarm.priority;
      return;
    case 'alertText': {
      const words = alertText(row, reader);
      if (words) alarm.alertText = words;
      return;
    }
    default:
      // Inactivation state, alert type and source, other MDC_ATTR_ rows: part of the group, not shown.
      return;
  }
}

/**
 * The monitor's alert text. An ST/TX/FT value has no components, so a `^`, `~`
 * or `&` in it is text the sender did not escape: the whole OBX-5 is taken as
 * written, with HL7 escapes (`\F\`, `\S\`, `\Xhh..\`, `\.br\`...) decoded. A
 * coded value gives its original text, else its text.
 */
function alertText(row: ObxRow, reader: Hl7Reader): string {
  let text: string;
  if (row.valueType === 'CWE' || row.valueType === 'CE') {
    const c = reader.components(row.seg, 5);
    text = c[8] || c[1] || c[0] || '';
  } else {
    text = reader.unescape(reader.raw(row.seg, 5));
  }
  return clipText(text.trim(), MAX_ALARM_TEXT);
}

function setSource(alarm: AlarmDraft, row: ObxRow, reader: Hl7Reader): void {
  const identity = identifyObservation(row.id);
  const code = identity?.code ?? (row.id[1] || row.id[0] || '');
  if (!code) return;
  const unit = unitToUcum(reader.components(row.seg, 6)) ?? identity?.defaultUnit ?? '';
  const value = row.valueType === 'NM'
    ? numericValue(reader.value(row.seg, 5), reader.value(row.seg, 11).toUpperCase(), identity?.nonNegative ?? false, row.setId)
    : null;
  alarm.source = { code: clipText(code, MAX_CODE), unit: clipText(unit, MAX_UNIT), value };
  if (row.subId) alarm.sourceInstance = row.subId;
}

/**
 * One reading per measurement: a vendor private code mapped to an MDC code
 * (352^MNDRY_ECG_VPB_RATE -> MDC_ECG_V_P_C_RATE) gives way to a standard MDC
 * row of the same code, device and time in the same message.
 */
function onePerMeasurement(drafts: Draft[]): Draft[] {
  const key = (d: NumericDraft) => `${d.equipmentId ?? ''}|${d.body.code}|${d.body.t}`;
  const standard = new Set<string>();
  for (const d of drafts) if (d.kind === 'numeric' && d.system === 'mdc') standard.add(key(d));
  if (standard.size === 0) return drafts;
  return drafts.filter((d) => d.kind !== 'numeric' || d.system === 'mdc' || !standard.has(key(d)));
}

/** Cuts text to at most max UTF-16 units without splitting a surrogate pair. */
function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
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
    text: d.alertText ?? clipText(d.eventText, MAX_ALARM_TEXT),
    active,
    alarmId: alarmIdOf(d),
  };
  if (d.phase !== undefined) body.phase = d.phase;
  if (d.state !== undefined) body.state = d.state;
  if (d.source !== undefined) body.source = d.source;
  return body;
}

/**
 * `<event code>|<source code or ''>|<instance>`: the instance is the group's
 * OBX-4 prefix (the source metric's MDS.VMD.CHAN.METRIC), else the source
 * row's OBX-4, else ''. A monitor sends the same for every message about one
 * alarm condition, so start, continue and end pair up.
 */
function alarmIdOf(d: AlarmDraft): string {
  const instance = clipText(d.prefix ?? d.sourceInstance ?? '', MAX_INSTANCE);
  return `${d.code}|${d.source?.code ?? ''}|${instance}`;
}
