/** Error codes of the signaling contract (DESIGN.md section 3). */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  /** A configured bound per principal was reached (devices per site, conferences, peers, consumers, ingests...); the message names the setting. */
  | 'limit_exceeded'
  /** The hub has no room for it now (e.g. the ingest port range is used up); retry later. */
  | 'unavailable'
  | 'internal';

/** An error a caller caused and should be told about as-is. Anything else becomes 'internal'. */
export class HoichanError extends Error {
  override name = 'HoichanError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HoichanError('bad_request', message);
export const forbidden = (message: string) => new HoichanError('forbidden', message);
export const notFound = (message: string) => new HoichanError('not_found', message);
export const conflict = (message: string) => new HoichanError('conflict', message);
export const limitExceeded = (message: string) => new HoichanError('limit_exceeded', message);
