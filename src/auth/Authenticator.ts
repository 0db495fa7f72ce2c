// The one place a token is judged. Every endpoint (signaling, uplink, HTTP
// API) asks verify(token, endpoint); the answer is the claims or an AuthError
// whose message is short and fixed (it goes back to the client and into the
// log, and never contains the token).

import { randomUUID } from 'node:crypto';
import { AGENT_AUDIENCES, AUDIENCE, PERSON_AUDIENCES, audiences, claimsSchema, type AgentClaims, type AnyClaims, type Claims, type ClaimsFor, type Endpoint, type PersonRole } from './claims.js';
import { AuthEvents } from './events.js';
import { JwsError, decodeJws, signJws, verifySignature } from './jws.js';
import { DEFAULT_KID, KeyRing, type AuthConfig } from './keys.js';
import { MemoryRevocations, type Revocation, type RevocationStore } from './revocation.js';

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(
    message: string,
    /** Who a correctly signed token claimed to be, for the refusal report. */
    readonly claimed?: { sub: string; jti: string },
  ) {
    super(message);
  }
}

/** Longest token the hub reads; a real one is well under 2 KB. */
const MAX_TOKEN_CHARS = 8192;

export type TokenRequest =
  | { kind: 'person'; sub: string; name: string; role: PersonRole; conf: string; site?: string; ttlSeconds: number }
  | { kind: 'agent'; siteId: string; name: string; conferences: string[]; devices?: string[]; ttlSeconds: number };

export interface AuthenticatorOptions {
  issuer: string;
  maxTokenLifetime: number;
  maxAgentTokenLifetime: number;
  clockSkew: number;
  /** Seconds since the epoch; tests move it. */
  now?: () => number;
}

/** config/default.json's auth values, for an authenticator built without a config (tests, benches). */
export const DEFAULT_AUTH_OPTIONS: AuthenticatorOptions = { issuer: 'hoichan', maxTokenLifetime: 12 * 3600, maxAgentTokenLifetime: 30 * 24 * 3600, clockSkew: 60 };

export class Authenticator {
  readonly events = new AuthEvents();
  readonly keys: KeyRing;
  readonly revocations: RevocationStore;
  readonly #o: Required<AuthenticatorOptions>;

  constructor(keys: KeyRing, options: AuthenticatorOptions, revocations: RevocationStore = new MemoryRevocations()) {
    this.keys = keys;
    this.revocations = revocations;
    this.#o = { now: () => Math.floor(Date.now() / 1000), ...options };
    revocations.on('changed', (added) => {
      for (const r of added) this.events.emit('revoked', 'jti' in r ? { jti: r.jti } : { sub: r.sub, before: r.before });
    });
  }

  static fromConfig(auth: AuthConfig, revocations?: RevocationStore): Authenticator {
    return new Authenticator(KeyRing.fromConfig(auth), auth, revocations);
  }

  /** One HS256 key (kid 'default', as auth.jwtSecret) and default options: what a hub with only a jwtSecret checks. */
  static forSecret(secret: string, options: Partial<AuthenticatorOptions> = {}): Authenticator {
    const key = Buffer.from(secret, 'utf8');
    const o = { ...DEFAULT_AUTH_OPTIONS, ...options };
    return new Authenticator(new KeyRing([{ kid: DEFAULT_KID, verify: { alg: 'HS256', secret: key }, sign: { alg: 'HS256', secret: key }, issuer: o.issuer }], null), o);
  }

  get options(): Readonly<Required<AuthenticatorOptions>> {
    return this.#o;
  }

  maxLifetime(role: AnyClaims['role']): number {
    return role === 'agent' ? this.#o.maxAgentTokenLifetime : this.#o.maxTokenLifetime;
  }

  /**
   * Signature, iss, aud, lifetime and role for the endpoint; then revocation.
   * Throws AuthError; reports the refusal on events.
   */
  async verify<E extends Endpoint>(token: unknown, endpoint: E, address?: string): Promise<ClaimsFor<E>> {
    let claims: AnyClaims | undefined;
    try {
      claims = this.verifyOffline(token, endpoint);
      const check = await this.revocations.check(claims);
      if (check.revoked) throw new AuthError('token revoked');
      if (check.staleMs !== undefined) this.#stale(endpoint, claims, check.staleMs, address);
      return claims as ClaimsFor<E>;
    } catch (err) {
      const reason = err instanceof AuthError ? err.message : 'revocation check failed';
      const who = claims ?? (err instanceof AuthError ? err.claimed : undefined);
      this.events.emit('refused', { endpoint, reason, ...(who ? { sub: who.sub, jti: who.jti } : {}), ...(address ? { address } : {}) });
      if (err instanceof AuthError) throw err;
      // A revocation store that cannot answer must not let tokens through.
      throw new AuthError('cannot check revocation now; try again');
    }
  }

  /** Everything but revocation (pure but for the clock). */
  verifyOffline<E extends Endpoint>(token: unknown, endpoint: E): ClaimsFor<E> {
    if (typeof token !== 'string' || token.length === 0) throw new AuthError('missing token');
    if (token.length > MAX_TOKEN_CHARS) throw new AuthError('invalid token');
    let decoded: ReturnType<typeof decodeJws>;
    try {
      decoded = decodeJws(token);
    } catch (err) {
      throw new AuthError(err instanceof JwsError ? err.message : 'invalid token');
    }
    const key = this.keys.find(decoded.header.kid);
    if (!key) throw new AuthError(decoded.header.kid === undefined ? 'token has no kid' : 'unknown key id');
    // The key's algorithm, not the token's, decides: this refuses `none` and HS/RS confusion.
    if (decoded.header.alg !== key.verify.alg) throw new AuthError('wrong algorithm for this key');
    if (!verifySignature(key.verify, decoded.signingInput, decoded.signature)) throw new AuthError('bad signature');

    const parsed = claimsSchema.safeParse(decoded.payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AuthError(`invalid claims: ${issue?.path.join('.') || 'payload'}${issue?.code === 'custom' ? ` (${issue.message})` : ''}`);
    }
    const claims = parsed.data;
    const fail = (reason: string) => new AuthError(reason, { sub: claims.sub, jti: claims.jti });
    const now = this.#o.now();
    const skew = this.#o.clockSkew;
    if (claims.iss !== key.issuer) throw fail('wrong issuer');
    if (!audiences(claims).includes(AUDIENCE[endpoint])) throw fail(`token is not for the ${endpoint} endpoint`);
    if (claims.exp <= now) throw fail('token expired');
    if (claims.iat > now + skew) throw fail('token issued in the future');
    if (claims.nbf !== undefined && claims.nbf > now + skew) throw fail('token not yet valid');
    if (claims.exp <= claims.iat) throw fail('token expires before it was issued');
    if (claims.exp - claims.iat > this.maxLifetime(claims.role)) throw fail('token lifetime exceeds the maximum');
    const wantAgent = endpoint === 'uplink';
    if (wantAgent !== (claims.role === 'agent')) throw fail(`role ${claims.role} may not use the ${endpoint} endpoint`);
    return claims as ClaimsFor<E>;
  }

  /**
   * For a socket already past its handshake (join, hello): its token may have
   * been revoked since, or have expired a moment before the socket's timer fires.
   */
  async recheck(claims: AnyClaims, endpoint: Endpoint): Promise<void> {
    let reason: string | undefined;
    if (claims.exp <= this.#o.now()) reason = 'token expired';
    else {
      try {
        const check = await this.revocations.check(claims);
        if (check.revoked) reason = 'token revoked';
        else if (check.staleMs !== undefined) this.#stale(endpoint, claims, check.staleMs);
      } catch {
        reason = 'cannot check revocation now; try again';
      }
    }
    if (reason === undefined) return;
    this.events.emit('refused', { endpoint, reason, sub: claims.sub, jti: claims.jti });
    throw new AuthError(reason);
  }

  /** Admitted on a copy of the revocation list that could not be refreshed: reported, for the audit log. */
  #stale(endpoint: Endpoint, claims: AnyClaims, ageMs: number, address?: string): void {
    this.events.emit('staleRevocationCheck', { endpoint, sub: claims.sub, role: claims.role, jti: claims.jti, ageMs, ...(address ? { address } : {}) });
  }

  /**
   * A refreshed token for a live socket: valid for the endpoint and for the same
   * principal and scope as the one it replaces, so a refresh never widens access.
   */
  async verifyRefresh<E extends Endpoint>(token: unknown, endpoint: E, current: ClaimsFor<E>, address?: string): Promise<ClaimsFor<E>> {
    const next = await this.verify(token, endpoint, address);
    const same =
      next.sub === current.sub &&
      next.role === current.role &&
      (next.role === 'agent'
        ? sameList(next.conferences, (current as AgentClaims).conferences) && sameList(next.devices, (current as AgentClaims).devices)
        : next.conf === (current as Claims).conf);
    if (!same) {
      this.events.emit('refused', { endpoint, reason: 'refresh token for another principal or scope', sub: next.sub, jti: next.jti, ...(address ? { address } : {}) });
      throw new AuthError('a refreshed token must be for the same subject, role and scope');
    }
    return next;
  }

  /** Mints a token with the signing key; the request must be one the hub would accept. */
  sign(request: TokenRequest): string {
    const key = this.keys.signer();
    const iat = this.#o.now();
    const common = { iss: key.issuer, iat, exp: iat + request.ttlSeconds, jti: randomUUID(), name: request.name };
    const payload =
      request.kind === 'person'
        ? { ...common, aud: PERSON_AUDIENCES, sub: request.sub, role: request.role, conf: request.conf, ...(request.site ? { site: request.site } : {}) }
        : { ...common, aud: AGENT_AUDIENCES, sub: request.siteId, role: 'agent' as const, conferences: request.conferences, ...(request.devices ? { devices: request.devices } : {}) };
    const parsed = claimsSchema.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AuthError(`cannot issue this token: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    const max = this.maxLifetime(parsed.data.role);
    if (!Number.isInteger(request.ttlSeconds) || request.ttlSeconds <= 0 || request.ttlSeconds > max) {
      throw new AuthError(`cannot issue this token: lifetime must be 1-${max} s for a ${parsed.data.role} token (auth.${parsed.data.role === 'agent' ? 'maxAgentTokenLifetime' : 'maxTokenLifetime'})`);
    }
    return signJws(key.sign, key.kid, parsed.data);
  }

  /** The revocation entry for one token, kept until it would have expired. */
  revocationOfToken(claims: { jti: string; exp: number }): Revocation {
    return { jti: claims.jti, until: claims.exp };
  }

  /** Every token of `sub` issued before `before` (seconds), kept as long as such a token could live. */
  revocationOfSubject(sub: string, before = this.#o.now() + 1): Revocation {
    return { sub, before, until: before + Math.max(this.#o.maxTokenLifetime, this.#o.maxAgentTokenLifetime) };
  }

  async revoke(revocation: Revocation): Promise<void> {
    await this.revocations.add(revocation);
  }

  async close(): Promise<void> {
    await this.revocations.close();
    this.events.removeAllListeners();
  }
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const set = new Set(a);
  return a.length === b.length && b.every((x) => set.has(x));
}
