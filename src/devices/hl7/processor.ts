// One HL7 message in, at most one ACK out: parse fully, route every
// observation, deliver once, and only then acknowledge (AA), so a message is
// either wholly taken or wholly refused.

import { createHash } from 'node:crypto';
import type { AcceptResult, DeviceReadingBody } from '../driver.js';
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
  /**
   * Takes the readings of one message. dedupKey names the message (control id,
   * length, hash of devices and bytes); a sink that already took it resolves
   * { duplicate: true } (the agent's journal remembers keys across restarts).
   */
  deliver(readings: DeviceReadingBody[], dedupKey: string): Promise<AcceptResult | void>;
  /** Legacy PDS monitors do not expect ACKs. */
  sendAcks: boolean;
}

export class Hl7MessageProcessor {
  readonly #options: ProcessorOptions;
  #ackSeq = 0;
  /**
   * Recently taken messages, so a resend after a lost ACK is answered without
   * asking the sink. The sink's ledger (the journal's, durable) is the rule
   * that also holds across restarts; this is the fast path while we live.
   */
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

    const key = messageKey(header.controlId, [...deviceIds], frame);
    const base = { controlId: header.controlId, deviceIds: [...deviceIds], readings: readings.length, skipped: interpreted.skipped };
    const duplicate = (): ProcessResult => ({
      reply: this.#ack(header, 'AA', receivedAt),
      outcome: { ...base, ack: opts.sendAcks ? 'AA' : 'none', readings: 0, duplicate: true },
    });
    if (readings.length > 0 && this.#recent.has(key)) return duplicate();
    let taken: AcceptResult | void;
    try {
      taken = await opts.deliver(readings, key);
    } catch {
      const result = this.#reject(header, 'AE', 'sink rejected', ERROR_CODES.internal, [...deviceIds], receivedAt);
      result.outcome.sinkRejected = true;
      return result;
    }
    if (readings.length > 0) this.#remember(key);
    if (taken?.duplicate) return duplicate();
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

/**
 * A message's resend identity: `<control id>|<bytes>|<hash>`, the hash (SHA-256,
 * 128 bits kept) over the devices it was routed to and its exact bytes. A
 * sender that reuses a control id for other content is not taken for a
 * resend. At most ~230 UTF-8 bytes (the journal's ledger key limit is 255).
 */
export function messageKey(controlId: string, deviceIds: readonly string[], frame: Buffer): string {
  const hash = createHash('sha256').update(deviceIds.join(',')).update('\0').update(frame).digest('base64url').slice(0, 22);
  return `${[...controlId].slice(0, 48).join('')}|${frame.length}|${hash}`;
}
