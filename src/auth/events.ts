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

export interface AuthExpired {
  endpoint: Endpoint;
  sub: string;
  jti: string;
}

export interface AuthEventMap {
  refused: [AuthRefused];
  revoked: [AuthRevoked];
  expired: [AuthExpired];
}

/** Typed emitter: `on('refused', (e) => ...)` is checked by the compiler. */
export class AuthEvents extends EventEmitter<AuthEventMap> {}
