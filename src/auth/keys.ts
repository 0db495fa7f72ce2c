// The hub's verification keys by kid, built from the auth config. A token
// names its key in the JWS header (kid); the key decides the algorithm. Old
// kids keep verifying until an operator removes them, so rotating the signing
// key logs nobody out.

import { readFileSync } from 'node:fs';
import type { AuthConfig } from './config.js';
import { privateKeyFor, publicKeyFor, type SignKey, type VerifyKey } from './jws.js';

export type { AuthConfig };

export interface RingKey {
  kid: string;
  verify: VerifyKey;
  /** Present for HS256 keys and asymmetric keys configured with a privateKey. */
  sign?: SignKey;
  /** The iss tokens verified by this key must carry. */
  issuer: string;
}

export class KeyConfigError extends Error {
  override name = 'KeyConfigError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
  }
}

/** The kid auth.jwtSecret stands for. */
export const DEFAULT_KID = 'default';

/** PEM text as is; anything else is a file path read now. */
function pemOf(value: string, key: string, read: (path: string) => string): string {
  if (value.trimStart().startsWith('-----BEGIN')) return value;
  try {
    return read(value);
  } catch (err) {
    throw new KeyConfigError(key, `cannot read key file ${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export class KeyRing {
  readonly #keys = new Map<string, RingKey>();
  readonly signingKid: string | undefined;

  constructor(keys: RingKey[], signingKid: string | null) {
    for (const key of keys) this.#keys.set(key.kid, key);
    const signers = keys.filter((k) => k.sign);
    this.signingKid = signingKid ?? (signers.length === 1 ? signers[0]!.kid : undefined);
  }

  static fromConfig(auth: AuthConfig, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): KeyRing {
    const keys: RingKey[] = [];
    if (auth.jwtSecret) {
      const secret = Buffer.from(auth.jwtSecret, 'utf8');
      keys.push({ kid: DEFAULT_KID, verify: { alg: 'HS256', secret }, sign: { alg: 'HS256', secret }, issuer: auth.issuer });
    }
    auth.keys.forEach((k, i) => {
      const issuer = k.issuer ?? auth.issuer;
      if (k.alg === 'HS256') {
        const secret = Buffer.from(k.secret, 'utf8');
        keys.push({ kid: k.kid, verify: { alg: 'HS256', secret }, sign: { alg: 'HS256', secret }, issuer });
        return;
      }
      let verify: VerifyKey;
      let sign: SignKey | undefined;
      const name = `auth.keys.${i}`;
      try {
        verify = { alg: k.alg, publicKey: publicKeyFor(k.alg, pemOf(k.publicKey, `${name}.publicKey`, read)) };
      } catch (err) {
        if (err instanceof KeyConfigError) throw err;
        throw new KeyConfigError(`${name}.publicKey`, (err as Error).message);
      }
      if (k.privateKey) {
        try {
          sign = { alg: k.alg, privateKey: privateKeyFor(k.alg, pemOf(k.privateKey, `${name}.privateKey`, read)) };
        } catch (err) {
          if (err instanceof KeyConfigError) throw err;
          throw new KeyConfigError(`${name}.privateKey`, (err as Error).message);
        }
      }
      keys.push({ kid: k.kid, verify, ...(sign ? { sign } : {}), issuer });
    });
    return new KeyRing(keys, auth.signingKid);
  }

  get size(): number {
    return this.#keys.size;
  }

  /**
   * The key for a token's kid. A token without kid is accepted only while the
   * ring has exactly one key (a single shared secret, as before kids existed).
   */
  find(kid: string | undefined): RingKey | undefined {
    if (kid !== undefined) return this.#keys.get(kid);
    return this.#keys.size === 1 ? this.#keys.values().next().value : undefined;
  }

  signer(): RingKey & { sign: SignKey } {
    const key = this.signingKid === undefined ? undefined : this.#keys.get(this.signingKid);
    if (!key?.sign) {
      throw new KeyConfigError('auth.signingKid', this.signingKid === undefined ? 'no key to sign with: set auth.signingKid (or auth.jwtSecret)' : `key ${this.signingKid} has no secret or privateKey to sign with`);
    }
    return key as RingKey & { sign: SignKey };
  }
}
