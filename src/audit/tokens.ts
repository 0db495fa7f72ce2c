// The token lifecycle in the audit log: sockets cut at their token's expiry or
// by a revocation, refreshes on live sockets, and each revocation the hub takes
// in. src/auth reports them on `auth.events`; this turns them into records.
// (Refused handshakes and bearer tokens are recorded by each front door, which
// knows the route and the client's address: `auth.refused`.)
//
// A record names a token by a short hash of its jti, never by the token: the
// jti is not secret, but 16 hex digits are enough to match a revocation or the
// issuer's own log (`printf %s <jti> | sha256sum | cut -c1-16`).

import { createHash } from 'node:crypto';
import type { AuthEvents, AuthSocket, Endpoint } from '../auth/index.js';
import { SYSTEM_ACTOR, type Actor, type AuditSink } from './events.js';

export function jtiHash(jti: string): string {
  return createHash('sha256').update(jti).digest('hex').slice(0, 16);
}

function via(endpoint: Endpoint): 'signaling' | 'uplink' {
  // Sockets exist on the signaling and /uplink namespaces only; 'api' never reaches here.
  return endpoint === 'uplink' ? 'uplink' : 'signaling';
}

function actorOf(e: AuthSocket): Actor {
  return { sub: e.sub, role: e.role, ...(e.address ? { ip: e.address } : {}) };
}

function conferenceOf(e: AuthSocket): { conferenceId?: string } {
  return e.conferenceId ? { conferenceId: e.conferenceId } : {};
}

/** Subscribes `audit` to the token lifecycle; returns the unsubscribe. */
export function auditTokenLifecycle(events: AuthEvents, audit: AuditSink): () => void {
  const onExpired = (e: AuthSocket) => audit.record({ type: 'token.expired', actor: actorOf(e), ...conferenceOf(e), outcome: 'unauthorized', target: { via: via(e.endpoint), jti: jtiHash(e.jti) } });
  const onSocketRevoked = (e: AuthSocket) => audit.record({ type: 'token.revoked', actor: actorOf(e), ...conferenceOf(e), outcome: 'unauthorized', target: { via: via(e.endpoint), jti: jtiHash(e.jti) } });
  const onRefreshed: Parameters<typeof events.on<'refreshed'>>[1] = (e) =>
    audit.record({ type: 'token.refreshed', actor: actorOf(e), ...conferenceOf(e), outcome: e.outcome, target: { via: via(e.endpoint), jti: jtiHash(e.jti), ...(e.outcome === 'ok' ? { exp: e.exp } : {}) } });
  const onRevoked: Parameters<typeof events.on<'revoked'>>[1] = (e) => {
    if (e.jti !== undefined) audit.record({ type: 'token.revocation', actor: SYSTEM_ACTOR, outcome: 'ok', target: { jti: jtiHash(e.jti) } });
    else if (e.sub !== undefined && e.before !== undefined) audit.record({ type: 'token.revocation', actor: SYSTEM_ACTOR, outcome: 'ok', target: { sub: e.sub, before: e.before } });
  };
  const onStale: Parameters<typeof events.on<'staleRevocationCheck'>>[1] = (e) =>
    audit.record({
      type: 'token.staleRevocationCheck',
      actor: { sub: e.sub, role: e.role, ...(e.address ? { ip: e.address } : {}) },
      outcome: 'ok',
      target: { via: e.endpoint === 'api' ? 'http' : via(e.endpoint), jti: jtiHash(e.jti), ageS: Math.round(e.ageMs / 1000) },
    });
  events.on('expired', onExpired);
  events.on('staleRevocationCheck', onStale);
  events.on('socketRevoked', onSocketRevoked);
  events.on('refreshed', onRefreshed);
  events.on('revoked', onRevoked);
  return () => {
    events.off('expired', onExpired);
    events.off('socketRevoked', onSocketRevoked);
    events.off('refreshed', onRefreshed);
    events.off('revoked', onRevoked);
    events.off('staleRevocationCheck', onStale);
  };
}
