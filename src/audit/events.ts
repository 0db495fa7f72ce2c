// The audit log's contract: one typed union of the events the hub records, and
// the zod schema of a stored record (records cross a boundary when `hoichan
// audit verify` and GET /api/audit read them back from disk).
//
// What a record may hold is deliberately narrow: ids (conference, device, peer,
// producer, ingest, token `sub`), roles, IP addresses, event types and outcome
// codes. Never media, reading values, patient names, display names or token
// text. Display names are left out even for staff: `sub` identifies the person
// to whoever issued the token, and a name typed into a token is free text.

import { z } from 'zod';

export const AUDIT_TYPES = [
  /** A handshake (signaling, uplink) or an HTTP bearer token was refused: target.via, target.reason. */
  'auth.refused',
  /** A join: outcome ok (target.peerId), or why it was refused. */
  'conference.join',
  /** A peer left: target.reason leave | disconnect | timeout (did not come back within the grace) | shutdown (the hub closed while it was away). */
  'conference.leave',
  /** A signaling request or uplink message refused with `forbidden`: target.request. */
  'request.forbidden',
  /** On join, a peer was sent a device's stream (its replay, or its resume from auth.deviceSeqs). */
  'device.replay',
  /** A site agent's hello attached a device to a conference (its readings now reach that conference's peers), or was refused. */
  'device.attach',
  /** A peer consumed a media producer (camera, microphone, screen, an ultrasound or device-video ingest). */
  'media.consume',
  'ingest.create',
  'ingest.delete',
  /** An HTTP route refused a token with 403 (a 401 is auth.refused): target.method, target.route. */
  'http.forbidden',
  /** An engineer used an /api route (every call, reads included). */
  'engineer.api',
  /** A live socket (signaling or /uplink) was cut at its token's exp: target.via, target.jti (a short hash). */
  'token.expired',
  /** A live socket was cut because a new revocation names its token or subject: target.via, target.jti. */
  'token.revoked',
  /** A refreshToken on a live socket: ok (target.jti and target.exp are the new token's), or refused (the current token's jti). */
  'token.refreshed',
  /** The hub took in a new revocation (file, Redis or in-process): target.jti (hash) or target.sub and target.before. */
  'token.revocation',
  /** A token admitted on this hub's copy of the revocation list while Redis was unreachable: target.via, target.jti (hash), target.ageS (the copy's age). */
  'token.staleRevocationCheck',
  /** A specialist started recording a conference (ok: target.recordingId), or was refused (outcome). */
  'recording.start',
  /** A recording stopped: target.reason requested | max-duration | disk-floor | conference-closed | shutdown; actor is the specialist who asked, else the hub. */
  'recording.stop',
  /** A recording's manifest or one of its files was read over HTTP: target.recordingId, target.file. */
  'recording.access',
  /** The log opened (hub start): target.seq of the head it continues from. */
  'audit.start',
  /** At open, a torn tail (a crash mid-write) was cut off: target.droppedBytes. */
  'audit.recovered',
  /** Retention deleted day files: target.lastSeq and target.lastHash are where the kept chain starts. */
  'audit.pruned',
  /** The write queue was full (disk stalled) and target.count records were not written. */
  'audit.dropped',
  /** One source (actor, address) went over audit.maxPerSourcePerMinute: target.count records of target.type folded into this one. */
  'audit.suppressed',
] as const;

export type AuditType = (typeof AUDIT_TYPES)[number];

export const OUTCOMES = ['ok', 'unauthorized', 'forbidden', 'bad_request', 'not_found', 'conflict', 'rate_limited', 'limit_exceeded', 'unavailable', 'internal'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type ActorRole = 'specialist' | 'site' | 'engineer' | 'agent' | 'system';

/** Who did it. `sub` and `role` are null when no token verified (a refused handshake). */
export interface Actor {
  sub: string | null;
  role: ActorRole | null;
  ip?: string;
}

/** Why a token was refused, as a fixed code (never the token's or the library's text). */
export type RefusalReason = 'missing' | 'expired' | 'invalid' | 'claims' | 'role' | 'revoked' | 'other';

/** The hub itself (audit.* events). */
export const SYSTEM_ACTOR: Actor = { sub: 'hub', role: 'system' };

type Common<T extends AuditType> = { type: T; actor: Actor; outcome: Outcome; conferenceId?: string };

/** Every event the hub records; `AuditLog.record()` takes one of these. */
export type AuditEvent =
  | (Common<'auth.refused'> & { target: { via: 'signaling' | 'uplink' | 'http'; reason: RefusalReason; method?: string; route?: string } })
  | (Common<'conference.join'> & { conferenceId: string; target?: { peerId: string } })
  | (Common<'conference.leave'> & { conferenceId: string; target: { peerId: string; reason: 'leave' | 'disconnect' | 'timeout' | 'shutdown' } })
  | (Common<'request.forbidden'> & { target: { via: 'signaling' | 'uplink'; request: string; peerId?: string } })
  | (Common<'device.replay'> & { conferenceId: string; target: { peerId: string; deviceId: string; resumed: boolean } })
  | (Common<'device.attach'> & { conferenceId: string; target: { deviceId: string } })
  | (Common<'media.consume'> & { conferenceId: string; target: { peerId: string; producerId: string; producerPeerId: string; source: string; kind: string } })
  | (Common<'ingest.create'> & { conferenceId: string; target: { deviceId: string; ingestId?: string; source: string; srtp: boolean } })
  | (Common<'ingest.delete'> & { conferenceId: string; target: { ingestId: string } })
  | (Common<'http.forbidden'> & { target: { method: string; route: string } })
  | (Common<'engineer.api'> & { target: { method: string; route: string; status: number } })
  | (Common<'token.expired'> & { target: { via: 'signaling' | 'uplink'; jti: string } })
  | (Common<'token.revoked'> & { target: { via: 'signaling' | 'uplink'; jti: string } })
  | (Common<'token.refreshed'> & { target: { via: 'signaling' | 'uplink'; jti: string; exp?: number } })
  | (Common<'token.revocation'> & { target: { jti: string } | { sub: string; before: number } })
  | (Common<'token.staleRevocationCheck'> & { target: { via: 'signaling' | 'uplink' | 'http'; jti: string; ageS: number } })
  | (Common<'recording.start'> & { conferenceId: string; target: { recordingId?: string } })
  | (Common<'recording.stop'> & { conferenceId: string; target: { recordingId: string; reason: string; tracks: number } })
  | (Common<'recording.access'> & { conferenceId: string; target: { recordingId: string; file: string } })
  | (Common<'audit.start'> & { target: { seq: number } })
  | (Common<'audit.recovered'> & { target: { file: string; droppedBytes: number } })
  | (Common<'audit.pruned'> & { target: { files: number; firstDay: string; lastDay: string; lastSeq: number; lastHash: string } })
  | (Common<'audit.dropped'> & { target: { count: number } })
  | (Common<'audit.suppressed'> & { target: { type: AuditType; count: number } });

export const GENESIS_HASH = '0'.repeat(64);

const shortText = z.string().max(256);

/** A flat object of strings (at most 256 characters), finite numbers and booleans; cheaper than z.record(z.union(...)). */
function isTarget(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const v of Object.values(value)) {
    if (typeof v === 'string' ? v.length > 256 : typeof v === 'number' ? !Number.isFinite(v) : typeof v !== 'boolean') return false;
  }
  return true;
}

/** One stored line. Keys in this order on disk; the hash covers the canonical (key-sorted) form. */
export const auditRecordSchema = z
  .object({
    seq: z.number().int().min(0),
    /** Date#toISOString() exactly (a general datetime check costs more than the hash; verify reads every record). */
    t: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'must be an ISO 8601 UTC time with milliseconds'),
    type: z.enum(AUDIT_TYPES),
    actor: z
      .object({
        sub: shortText.nullable(),
        role: z.enum(['specialist', 'site', 'engineer', 'agent', 'system']).nullable(),
        ip: shortText.optional(),
      })
      .strict(),
    conferenceId: shortText.optional(),
    target: z.custom<Record<string, string | number | boolean>>(isTarget, 'must be an object of short strings, numbers and booleans').optional(),
    outcome: z.enum(OUTCOMES),
    prevHash: z.string().regex(/^[0-9a-f]{64}$/),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** Maps a verifier's message (auth.ts AuthError) to a fixed reason code. */
export function refusalReason(message: string | undefined): RefusalReason {
  if (!message) return 'other';
  if (message.startsWith('missing')) return 'missing';
  if (message.includes('expired')) return 'expired';
  if (message.includes('revoked')) return 'revoked';
  if (message.startsWith('invalid claims')) return 'claims';
  if (message.startsWith('role ') || message.includes('may not')) return 'role';
  if (message.startsWith('invalid')) return 'invalid';
  // src/auth's wording: a token for another endpoint is a role/purpose refusal; a bad signature, key or claim set is invalid.
  if (message.includes('is not for the')) return 'role';
  if (/signature|malformed|algorithm|key id|no kid|issuer|lifetime|future|not yet|expires before/.test(message)) return 'invalid';
  return 'other';
}

/** What the hub's parts record into: AuditLog, the one implementation. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

/** The outcome of an HTTP status. */
export function outcomeOfStatus(status: number): Outcome {
  if (status < 400) return 'ok';
  return ({ 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 413: 'bad_request', 429: 'rate_limited', 503: 'unavailable' } as Record<number, Outcome>)[status] ?? (status < 500 ? 'bad_request' : 'internal');
}

/** The record of a socket handshake refused for its token (no token text: the reason is a fixed word). */
export function handshakeRefusal(via: 'signaling' | 'uplink', address: string, message: string | undefined): AuditEvent {
  return { type: 'auth.refused', actor: { sub: null, role: null, ip: address }, outcome: 'unauthorized', target: { via, reason: refusalReason(message) } };
}
