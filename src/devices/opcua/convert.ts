import { DataType, VariantArrayType, type DataValue } from 'node-opcua-client';
import type { DeviceReadingBody } from '../driver.js';
import type { OpcuaMapping } from './config.js';

// One OPC UA data change -> one reading. Pure, so the timestamp and quality rules
// can be read (and tested) in one place.

export type Quality = 'good' | 'uncertain' | 'bad';

export type Conversion =
  | { ok: true; reading: DeviceReadingBody; quality: Quality; statusName: string }
  | { ok: false; quality: Quality; statusName: string; error: string }
  /** The node holds no value yet (a server just started): nothing to report. */
  | { ok: 'empty' };

// OPC UA's "no time" is 1601-01-01; anything before 2000 is not a real device clock.
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2000, 0, 1);

function plausibleMs(date: Date | null | undefined): number | undefined {
  const ms = date?.getTime();
  return ms !== undefined && Number.isFinite(ms) && ms >= EARLIEST_PLAUSIBLE_MS ? ms : undefined;
}

/** Device time: SourceTimestamp, else ServerTimestamp, else receipt time. */
export function valueTime(dataValue: DataValue, receivedAt: number): number {
  return plausibleMs(dataValue.sourceTimestamp) ?? plausibleMs(dataValue.serverTimestamp) ?? receivedAt;
}

function qualityOf(dataValue: DataValue): Quality {
  const status = dataValue.statusCode;
  if (status.isGood()) return 'good';
  return status.isBad() ? 'bad' : 'uncertain';
}

const INT64_TYPES = new Set([DataType.Int64, DataType.UInt64]);

/** A scalar OPC UA value as a number, or undefined when it is not numeric. */
function scalarNumber(dataType: DataType, value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  // node-opcua carries (U)Int64 as [high, low] 32-bit words.
  if (INT64_TYPES.has(dataType) && Array.isArray(value) && value.length === 2) {
    const [high, low] = value as [number, number];
    return high * 2 ** 32 + low;
  }
  return undefined;
}

function scaled(raw: number, mapping: OpcuaMapping): number | null {
  if (!Number.isFinite(raw)) return null;
  // Skip the arithmetic when not configured so float values pass through bit-exact.
  let value = raw;
  if (mapping.scale !== undefined) value *= mapping.scale;
  if (mapping.offset !== undefined) value += mapping.offset;
  return value;
}

export interface ConvertContext {
  deviceId: string;
  mapping: OpcuaMapping;
  receivedAt: number;
  waveformTimestamp: 'lastSample' | 'firstSample';
}

export function convertDataValue(dataValue: DataValue, ctx: ConvertContext): Conversion {
  const { deviceId, mapping, receivedAt } = ctx;
  const quality = qualityOf(dataValue);
  const statusName = dataValue.statusCode.name;
  const t = valueTime(dataValue, receivedAt);
  const variant = dataValue.value;
  if (quality !== 'bad' && (variant.dataType === DataType.Null || variant.value === null || variant.value === undefined)) return { ok: 'empty' };
  const isArray = variant.arrayType !== VariantArrayType.Scalar;

  if (mapping.kind === 'numeric') {
    if (quality === 'bad') {
      return { ok: true, quality, statusName, reading: { deviceId, kind: 'numeric', code: mapping.code, unit: mapping.unit, t, rt: receivedAt, value: null } };
    }
    if (isArray) return { ok: false, quality, statusName, error: 'expected a scalar for a numeric mapping, got an array' };
    const raw = scalarNumber(variant.dataType, variant.value);
    if (raw === undefined) return { ok: false, quality, statusName, error: `expected a numeric value, got ${DataType[variant.dataType]}` };
    return { ok: true, quality, statusName, reading: { deviceId, kind: 'numeric', code: mapping.code, unit: mapping.unit, t, rt: receivedAt, value: scaled(raw, mapping) } };
  }

  // Waveform: a bad block carries no trustworthy samples, not even its length.
  if (quality === 'bad') return { ok: false, quality, statusName, error: `waveform block with status ${statusName}` };
  if (!isArray) return { ok: false, quality, statusName, error: 'expected an array for a waveform mapping, got a scalar' };
  const values = variant.value as ArrayLike<unknown>;
  if (values.length === 0) return { ok: false, quality, statusName, error: 'empty waveform block' };
  const samples: (number | null)[] = [];
  for (let i = 0; i < values.length; i++) {
    const raw = values[i];
    if (typeof raw !== 'number') return { ok: false, quality, statusName, error: `expected a numeric array, got ${DataType[variant.dataType]}` };
    samples.push(scaled(raw, mapping));
  }
  const sampleRate = mapping.sampleRate as number; // schema requires it for waveforms
  // The reading's t is the first sample's time; a block stamped at its last
  // sample started (n - 1) sample periods earlier.
  const firstSampleT = ctx.waveformTimestamp === 'lastSample' ? t - ((samples.length - 1) * 1000) / sampleRate : t;
  return {
    ok: true,
    quality,
    statusName,
    reading: { deviceId, kind: 'waveform', code: mapping.code, unit: mapping.unit, t: firstSampleT, rt: receivedAt, sampleRate, samples },
  };
}

/**
 * Identity of a value as the device stamped it. After a re-subscribe a server
 * repeats each node's current value; same source time, status and content means
 * it is not a new measurement. undefined when the value has no source time.
 */
export function valueIdentity(dataValue: DataValue): string | undefined {
  const sourceMs = plausibleMs(dataValue.sourceTimestamp);
  if (sourceMs === undefined) return undefined;
  const value: unknown = dataValue.value.value;
  const content =
    value !== null && typeof value === 'object' && 'length' in value
      ? `${(value as ArrayLike<unknown>).length}:${String((value as ArrayLike<unknown>)[0])}`
      : String(value);
  return `${sourceMs}|${dataValue.statusCode.value}|${content}`;
}
