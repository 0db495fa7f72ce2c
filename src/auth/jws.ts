// Compact JWS (RFC 7515) signing and verification on node:crypto, for the
// three algorithms the hub accepts: HS256 (a shared secret), RS256 and EdDSA
// (Ed25519; a hospital identity provider signs, the hub only verifies).
// jsonwebtoken 9 has no EdDSA, and doing the few lines here lets the key, not
// the token, decide the algorithm: a key is configured with one alg and a token
// whose header names another is refused, so neither `alg: none` nor an HS256
// token "signed" with an RSA public key as the secret can pass.
// Pure: no I/O, no clock.

import { createHmac, createPrivateKey, createPublicKey, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export type Algorithm = 'HS256' | 'RS256' | 'EdDSA';
export const ALGORITHMS: readonly Algorithm[] = ['HS256', 'RS256', 'EdDSA'];

/** A key as the verifier uses it: the algorithm is the key's, never the token's. */
export type VerifyKey = { alg: 'HS256'; secret: Buffer } | { alg: 'RS256' | 'EdDSA'; publicKey: KeyObject };
export type SignKey = { alg: 'HS256'; secret: Buffer } | { alg: 'RS256' | 'EdDSA'; privateKey: KeyObject };

export class JwsError extends Error {
  override name = 'JwsError';
}

export interface JwsHeader {
  alg: string;
  kid?: string;
  typ?: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64urlDecode(part: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw new JwsError('malformed token');
  return Buffer.from(part, 'base64url');
}

function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Splits a compact JWS and reads its header; the signature is not checked yet. */
export function decodeJws(token: string): { header: JwsHeader; payload: unknown; signingInput: string; signature: Buffer } {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwsError('malformed token');
  const [h, p, s] = parts as [string, string, string];
  let header: unknown;
  let payload: unknown;
  try {
    header = JSON.parse(b64urlDecode(h).toString('utf8'));
    payload = JSON.parse(b64urlDecode(p).toString('utf8'));
  } catch (err) {
    if (err instanceof JwsError) throw err;
    throw new JwsError('malformed token');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new JwsError('malformed token header');
  const { alg, kid, typ, crit } = header as Record<string, unknown>;
  if (typeof alg !== 'string') throw new JwsError('token header has no alg');
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 128)) throw new JwsError('token header kid is not a short string');
  if (typ !== undefined && typ !== 'JWT') throw new JwsError('token header typ is not JWT');
  // No extension is understood, so a token that says one is critical must be refused (RFC 7515 4.1.11).
  if (crit !== undefined) throw new JwsError('token header has crit extensions');
  return { header: { alg, ...(kid !== undefined ? { kid: kid as string } : {}) }, payload, signingInput: `${h}.${p}`, signature: b64urlDecode(s) };
}

/** True when signature is the key's signature of signingInput under the key's own algorithm. */
export function verifySignature(key: VerifyKey, signingInput: string, signature: Buffer): boolean {
  const data = Buffer.from(signingInput);
  switch (key.alg) {
    case 'HS256': {
      const expected = createHmac('sha256', key.secret).update(data).digest();
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    }
    case 'RS256':
      return cryptoVerify('sha256', data, key.publicKey, signature);
    case 'EdDSA':
      return cryptoVerify(null, data, key.publicKey, signature);
  }
}

export function signJws(key: SignKey, kid: string | undefined, payload: object): string {
  const signingInput = `${b64urlJson({ alg: key.alg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}) })}.${b64urlJson(payload)}`;
  const data = Buffer.from(signingInput);
  let signature: Buffer;
  switch (key.alg) {
    case 'HS256':
      signature = createHmac('sha256', key.secret).update(data).digest();
      break;
    case 'RS256':
      signature = cryptoSign('sha256', data, key.privateKey);
      break;
    case 'EdDSA':
      signature = cryptoSign(null, data, key.privateKey);
      break;
  }
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** A public key from PEM text, checked against the algorithm it is configured for. */
export function publicKeyFor(alg: 'RS256' | 'EdDSA', pem: string): KeyObject {
  const key = createPublicKey(pem);
  checkKeyType(alg, key);
  return key;
}

export function privateKeyFor(alg: 'RS256' | 'EdDSA', pem: string): KeyObject {
  const key = createPrivateKey(pem);
  checkKeyType(alg, key);
  return key;
}

function checkKeyType(alg: 'RS256' | 'EdDSA', key: KeyObject): void {
  const type = key.asymmetricKeyType;
  if (alg === 'RS256' && type !== 'rsa') throw new JwsError(`an RS256 key must be an RSA key, not ${type}`);
  if (alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new JwsError('an RS256 key must have at least 2048 bits');
  if (alg === 'EdDSA' && type !== 'ed25519') throw new JwsError(`an EdDSA key must be an Ed25519 key, not ${type}`);
}
