import { EventEmitter } from 'node:events';
import type { Endpoint } from './claims.js';

// What the authenticator tells whoever listens (the audit log, metrics):
// never the token itself, only who it claimed to be and why it was refused.

export interface AuthRefused {
  endpoint: Endpoint;
  /** Short, fixed wording (e.g. 'token expired', 'wrong audience'); no token text. */
  reason: string;
  /** Claimed subject and token id, when the token could be read at all. */
  sub?: string;
  jti?: string;
  address?: string;
}

export interface AuthRevoked {
  /** What was revoked: one token, or every token of a subject issued before `before`. */
  jti?: string;
  sub?: string;
  before?: number;
}

/** One live socket and the token it holds (never the token text). */
export interface AuthSocket {
  endpoint: Endpoint;
  sub: string;
  role: 'specialist' | 'site' | 'engineer' | 'agent';
  jti: string;
  /** The person token's conference (absent for '*' and for agents). */
  conferenceId?: string;
  /** The client's address (src/http/clientAddress.ts). */
  address?: string;
}

/** A socket cut at its token's exp. */
export type AuthExpired = AuthSocket;

/** A live socket cut because a new revocation names its token or subject. */
export type AuthSocketRevoked = AuthSocket;

/** A `refreshToken` on a live socket: ok (the new token's jti and exp), or refused (the current token's jti). */
export type AuthRefreshed = AuthSocket & { outcome: 'ok'; exp: number } | AuthSocket & { outcome: 'unauthorized' | 'forbidden' };

/**
 * A token admitted although the shared revocation list (Redis) could not be
 * asked: checked against this hub's copy of it, last known complete ageMs ago
 * (within auth.revocationMaxStaleness).
 */
export interface AuthStaleRevocationCheck {
  endpoint: Endpoint;
  sub: string;
  role: AuthSocket['role'];
  jti: string;
  ageMs: number;
  address?: string;
}

export interface AuthEventMap {
  refused: [AuthRefused];
  revoked: [AuthRevoked];
  expired: [AuthExpired];
  socketRevoked: [AuthSocketRevoked];
  refreshed: [AuthRefreshed];
  staleRevocationCheck: [AuthStaleRevocationCheck];
}

/** Typed emitter: `on('refused', (e) => ...)` is checked by the compiler. */
export class AuthEvents extends EventEmitter<AuthEventMap> {}
