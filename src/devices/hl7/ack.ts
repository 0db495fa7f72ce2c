// Original-mode acknowledgements: MSH with sender and receiver swapped, then
// MSA (and ERR for AE/AR).

import { escapeHl7, STANDARD_ENCODING } from './message.js';
import type { MessageHeader } from './observations.js';
import { formatHl7Time } from './time.js';

export type AckCode = 'AA' | 'AE' | 'AR';

/** HL7 table 0357 error codes we use. */
export const ERROR_CODES = {
  unsupportedMessageType: 200,
  unknownKey: 204,
  internal: 207,
  dataType: 102,
} as const;

export interface AckOptions {
  code: AckCode;
  /** MSH-10 of the ACK itself. */
  ackControlId: string;
  now: number;
  offsetMinutes: number;
  /** Why, for AE/AR. Never patient data. */
  reason?: string;
  errorCode?: number;
}

/** The ACK for a message; header is undefined when the frame was not HL7 at all. */
export function buildAck(header: MessageHeader | undefined, options: AckOptions): string {
  const enc = STANDARD_ENCODING;
  const trigger = header?.messageType.split('^')[1] ?? '';
  const hd = (components: string[] | undefined) => (components ?? []).map((c) => escapeHl7(c, enc)).join(enc.component);
  const msh = [
    'MSH',
    '^~\\&',
    hd(header?.receivingApplication),
    hd(header?.receivingFacility),
    hd(header?.sendingApplication),
    hd(header?.sendingFacility),
    formatHl7Time(options.now, options.offsetMinutes),
    '',
    trigger ? `ACK^${trigger}^ACK` : 'ACK',
    options.ackControlId,
    escapeHl7(header?.processingId || 'P', enc),
    escapeHl7(header?.version || '2.6', enc),
  ].join('|');
  const controlId = escapeHl7(header?.controlId ?? '', enc);
  const reason = options.reason ? escapeHl7(options.reason, enc) : '';
  const segments = [msh, reason ? `MSA|${options.code}|${controlId}|${reason}` : `MSA|${options.code}|${controlId}`];
  if (options.code !== 'AA') {
    const err = options.errorCode ?? ERROR_CODES.internal;
    segments.push(`ERR|||${err}^${reason}^HL70357|E`);
  }
  return segments.join('\r') + '\r';
}
