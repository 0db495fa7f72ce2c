// One HL7 message in, at most one ACK out: parse fully, route every
// observation, deliver once, and only then acknowledge (AA), so a message is
// either wholly taken or wholly refused.

import type { DeviceReadingBody } from '../driver.js';
import { buildAck, ERROR_CODES, type AckCode } from './ack.js';
import { mllpFrame } from './framing.js';
import { Hl7SyntaxError, parseHl7, type Hl7Message } from './message.js';
import {
  Hl7ContentError,
  firstEquipmentId,
  interpretObservations,
  readHeader,
  type MessageHeader,
} from './observations.js';
import type { DeviceRouter } from './routing.js';

const OBSERVATION_TYPES = new Set(['ORU^R01', 'ORU^W01', 'ORU^R40']);
const RECENT_KEYS = 4096;

export interface ProcessOutcome {
  /** 'none' when no reply is due (the message was itself an ACK, or ACKs are off). */
  ack: AckCode | 'none';
  controlId: string;
  /** Devices the message was (or would have been) for; [] when unknown. */
  deviceIds: string[];
  readings: number;
  skipped: number;
  reason?: string;
  /** A resend of a message already taken: acknowledged, not delivered again. */
  duplicate?: boolean;
  /** The sink refused the readings. */
  sinkRejected?: boolean;
}

export interface ProcessResult {
  reply: Buffer | undefined;
  outcome: ProcessOutcome;
}

export interface ProcessorOptions {
  router: DeviceRouter;
  offsetMinutes: number;
  processingId: string;
  deliver(readings: DeviceReadingBody[]): Promise<void>;
  /** Legacy PDS monitors do not expect ACKs. */
  sendAcks: boolean;
}

export class Hl7MessageProcessor {
  readonly #options: ProcessorOptions;
  #ackSeq = 0;
  /** Recently taken messages, so a resend after a lost ACK is not journaled twice. */
  readonly #recent = new Set<string>();

  constructor(options: ProcessorOptions) {
    this.#options = options;
  }

  async process(frame: Buffer, receivedAt: number): Promise<ProcessResult> {
    const opts = this.#options;
    let message: Hl7Message;
    let header: MessageHeader;
    try {
      message = parseHl7(decodeFrame(frame));
      header = readHeader(message, opts.offsetMinutes);
    } catch (err) {
      const reason = err instanceof Hl7SyntaxError ? `not an HL7 message: ${err.message}` : 'not an HL7 message';
      return this.#reject(undefined, 'AE', reason, ERROR_CODES.dataType, [], receivedAt);
    }
    if (header.messageType.startsWith('ACK')) {
      return { reply: undefined, outcome: { ack: 'none', controlId: header.controlId, deviceIds: [], readings: 0, skipped: 0 } };
    }
    const hinted = opts.router.route(firstEquipmentId(message, header));
    const hintIds = hinted ? [hinted] : [];
    if (header.processingId !== opts.processingId) {
      return this.#reject(header, 'AR', `processing id ${clip(header.processingId)} not accepted`, ERROR_CODES.unsupportedMessageType, hintIds, receivedAt);
    }
    if (!OBSERVATION_TYPES.has(header.messageType)) {
      return this.#reject(header, 'AR', `unsupported message type ${clip(header.messageType)}`, ERROR_CODES.unsupportedMessageType, hintIds, receivedAt);
    }

    let interpreted;
    try {
      interpreted = interpretObservations(message, header, opts.offsetMinutes, receivedAt);
    } catch (err) {
      const reason = err instanceof Hl7ContentError ? err.message : 'internal error while reading the message';
      return this.#reject(header, 'AE', reason, ERROR_CODES.dataType, hintIds, receivedAt);
    }

    const readings: DeviceReadingBody[] = [];
    const deviceIds = new Set<string>(hintIds);
    for (const obs of interpreted.observations) {
      const deviceId = opts.router.route(obs.equipmentId);
      if (!deviceId) {
        const why = obs.equipmentId ? `unknown equipment id ${clip(obs.equipmentId)}` : 'no equipment id (OBX-18)';
        return this.#reject(header, 'AR', why, ERROR_CODES.unknownKey, [], receivedAt);
      }
      deviceIds.add(deviceId);
      readings.push({ ...obs.body, deviceId });
    }

    const key = `${[...deviceIds].join(',')}|${header.controlId}|${frame.length}|${fnv1a(frame)}`;
    const base = { controlId: header.controlId, deviceIds: [...deviceIds], readings: readings.length, skipped: interpreted.skipped };
    if (readings.length > 0 && this.#recent.has(key)) {
      return { reply: this.#ack(header, 'AA', receivedAt), outcome: { ...base, ack: opts.sendAcks ? 'AA' : 'none', readings: 0, duplicate: true } };
    }
    try {
      await opts.deliver(readings);
    } catch {
      const result = this.#reject(header, 'AE', 'sink rejected', ERROR_CODES.internal, [...deviceIds], receivedAt);
      result.outcome.sinkRejected = true;
      return result;
    }
    if (readings.length > 0) this.#remember(key);
    return { reply: this.#ack(header, 'AA', receivedAt), outcome: { ...base, ack: opts.sendAcks ? 'AA' : 'none' } };
  }

  #reject(
    header: MessageHeader | undefined,
    code: 'AE' | 'AR',
    reason: string,
    errorCode: number,
    deviceIds: string[],
    now: number,
  ): ProcessResult {
    return {
      reply: this.#ack(header, code, now, reason, errorCode),
      outcome: { ack: this.#options.sendAcks ? code : 'none', controlId: header?.controlId ?? '', deviceIds, readings: 0, skipped: 0, reason },
    };
  }

  #ack(header: MessageHeader | undefined, code: AckCode, now: number, reason?: string, errorCode?: number): Buffer | undefined {
    if (!this.#options.sendAcks) return undefined;
    this.#ackSeq = (this.#ackSeq + 1) % 1_000_000_000;
    const text = buildAck(header, {
      code,
      ackControlId: `HOI${this.#ackSeq}`,
      now,
      offsetMinutes: this.#options.offsetMinutes,
      ...(reason !== undefined ? { reason } : {}),
      ...(errorCode !== undefined ? { errorCode } : {}),
    });
    return mllpFrame(text);
  }

  #remember(key: string): void {
    this.#recent.add(key);
    if (this.#recent.size > RECENT_KEYS) this.#recent.delete(this.#recent.values().next().value!);
  }
}

/** UTF-8 unless MSH-18 names an ISO 8859 character set. */
function decodeFrame(frame: Buffer): string {
  const text = frame.toString('utf8');
  const lineEnd = text.search(/[\r\n]/);
  const firstLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  return /8859/.test(firstLine) ? frame.toString('latin1') : text;
}

/** Keeps device-sent text in reasons and logs short. */
function clip(text: string): string {
  return text.length > 32 ? `${text.slice(0, 32)}…` : text;
}

function fnv1a(bytes: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}
