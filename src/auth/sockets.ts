// Keeps a socket.io namespace's sockets within their tokens: each socket is
// cut when its token expires (unless a refreshed token moved the deadline) and
// when a revocation names its token or subject. Both namespaces (signaling and
// /uplink) use one of these, and the one handshake check below.

import type { Namespace, Socket } from 'socket.io';
import type { PeerEventMap, PeerEventName } from '../contract/index.js';
import { socketClientAddress } from '../common/clientAddress.js';
import { createLogger } from '../common/logger.js';
import { AuthError, type Authenticator } from './Authenticator.js';
import type { AnyClaims, ClaimsFor, Endpoint } from './claims.js';
import type { AuthSocket } from './events.js';
import type { Revocation } from './revocation.js';

const log = createLogger('auth');

/** setTimeout holds at most ~24.8 days; agent tokens may live longer, so long waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Events a client gets just before the hub closes its socket for its token. */
export const TOKEN_EXPIRED_EVENT = 'tokenExpired' satisfies PeerEventName;
export const TOKEN_REVOKED_EVENT = 'tokenRevoked' satisfies PeerEventName;

export interface HandshakeOptions<E extends Endpoint> {
  /** Keeps the verified claims on the socket (socket.data), where the namespace's handlers read them. */
  accept(socket: Socket, claims: ClaimsFor<E>): void;
  /** A further check of a valid token (e.g. connection caps): the refusal message, or undefined to admit. */
  admit?(socket: Socket, claims: ClaimsFor<E>): string | undefined;
  /** A refused handshake, for the caller's audit log (src/audit knows how to record it; auth does not depend on audit). */
  refused(address: string, message: string | undefined): void;
  /** The log line of a refusal, e.g. 'handshake refused'. */
  refusedMessage: string;
}

/**
 * The token check on connect, for a namespace's `use`: a missing, invalid,
 * expired or revoked token fails the handshake with `unauthorized`, logged
 * (reason and address, never the token) and reported to `refused` for the audit log. socket.io 4.8 runs it for
 * a recovered connection too, so a resuming client presents its token again.
 */
export function tokenHandshake<E extends 'signaling' | 'uplink'>(auth: Authenticator, endpoint: E, options: HandshakeOptions<E>): (socket: Socket, next: (err?: Error) => void) => void {
  return (socket, next) => {
    const address = socketClientAddress(socket);
    auth.verify(socket.handshake.auth?.token, endpoint, address).then(
      (claims) => {
        const refusal = options.admit?.(socket, claims);
        if (refusal) {
          next(new Error(refusal));
          return;
        }
        options.accept(socket, claims);
        next();
      },
      (err: unknown) => {
        const message = err instanceof AuthError ? err.message : undefined;
        log.info({ reason: message ?? 'error', address }, options.refusedMessage);
        options.refused(address, message);
        next(new Error('unauthorized'));
      },
    );
  };
}

export class SocketTokens {
  readonly #auth: Authenticator;
  readonly #nsp: Namespace;
  readonly #endpoint: Endpoint;
  readonly #claimsOf: (socket: Socket) => AnyClaims | undefined;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #onChanged = (added: Revocation[]) => this.#sweep(added);

  constructor(auth: Authenticator, nsp: Namespace, endpoint: Endpoint, claimsOf: (socket: Socket) => AnyClaims | undefined) {
    this.#auth = auth;
    this.#nsp = nsp;
    this.#endpoint = endpoint;
    this.#claimsOf = claimsOf;
    auth.revocations.on('changed', this.#onChanged);
  }

  /** A `refreshToken` was accepted: the socket now holds `next`, its deadline moves. */
  refreshed(socket: Socket, next: AnyClaims): void {
    this.watch(socket, next);
    this.#auth.events.emit('refreshed', { ...this.#describe(socket, next), outcome: 'ok', exp: next.exp });
  }

  /** A `refreshToken` was refused; the socket keeps its current token (and deadline). */
  refreshRefused(socket: Socket, current: AnyClaims, outcome: 'unauthorized' | 'forbidden'): void {
    this.#auth.events.emit('refreshed', { ...this.#describe(socket, current), outcome });
  }

  #describe(socket: Socket, claims: AnyClaims): AuthSocket {
    const conferenceId = claims.role !== 'agent' && claims.conf !== '*' ? claims.conf : undefined;
    return { endpoint: this.#endpoint, sub: claims.sub, role: claims.role, jti: claims.jti, address: socketClientAddress(socket), ...(conferenceId ? { conferenceId } : {}) };
  }

  /** (Re)arms the socket's expiry for these claims; call at connection and after each refresh. */
  watch(socket: Socket, claims: AnyClaims): void {
    const known = this.#timers.has(socket.id);
    this.#arm(socket, claims.exp * 1000);
    if (!known) socket.once('disconnect', () => this.#clear(socket.id));
  }

  #arm(socket: Socket, expMs: number): void {
    this.#clear(socket.id);
    const wait = expMs - Date.now();
    if (wait > MAX_TIMER_MS) {
      this.#timers.set(socket.id, setTimeout(() => this.#arm(socket, expMs), MAX_TIMER_MS));
      return;
    }
    this.#timers.set(
      socket.id,
      setTimeout(() => {
        this.#timers.delete(socket.id);
        const claims = this.#claimsOf(socket);
        if (!socket.connected || !claims) return;
        this.#auth.events.emit('expired', this.#describe(socket, claims));
        log.info({ endpoint: this.#endpoint, jti: claims.jti, socket: socket.id }, 'token expired; closing its socket');
        socket.emit(TOKEN_EXPIRED_EVENT, { exp: claims.exp } satisfies PeerEventMap['tokenExpired']);
        socket.disconnect(true);
      }, Math.max(0, wait)),
    );
  }

  #clear(id: string): void {
    const timer = this.#timers.get(id);
    if (timer) clearTimeout(timer);
    this.#timers.delete(id);
  }

  /** After a revocation: every live socket whose token it names is cut (matched here, no store round trip per socket). */
  #sweep(added: Revocation[]): void {
    const names = (claims: AnyClaims) => added.some((r) => ('jti' in r ? r.jti === claims.jti : r.sub === claims.sub && claims.iat < r.before));
    let cut = 0;
    for (const socket of [...this.#nsp.sockets.values()]) {
      const claims = this.#claimsOf(socket);
      if (!claims || !socket.connected || !names(claims)) continue;
      cut++;
      this.#auth.events.emit('socketRevoked', this.#describe(socket, claims));
      socket.emit(TOKEN_REVOKED_EVENT, {} satisfies PeerEventMap['tokenRevoked']);
      socket.disconnect(true);
    }
    if (cut > 0) log.info({ endpoint: this.#endpoint, sockets: cut }, 'revoked tokens: sockets closed');
  }

  close(): void {
    this.#auth.revocations.off('changed', this.#onChanged);
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
