import type { ErrorCode } from '../contract/signaling.js';

/** Error codes of the signaling contract (docs/PROTOCOL.md, "Requests and replies"). */
export type { ErrorCode };

/** An error a caller caused and should be told about as-is. Anything else becomes 'internal'. */
export class HoichanError extends Error {
  override name = 'HoichanError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extension fields of the error object (e.g. a join's `redirect`, docs/PROTOCOL.md). */
    readonly extra?: { redirect: { hubId: string; url: string } },
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HoichanError('bad_request', message);
export const forbidden = (message: string) => new HoichanError('forbidden', message);
export const notFound = (message: string) => new HoichanError('not_found', message);
export const conflict = (message: string) => new HoichanError('conflict', message);
export const limitExceeded = (message: string) => new HoichanError('limit_exceeded', message);
