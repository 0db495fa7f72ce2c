import { z } from 'zod';

// The auth section of the hub's configuration: its schema and cross-field
// checks live with the code that uses them; src/config/schema.ts composes it.

/** Publicly known; accepted only in demo mode, and said so loudly at start. */
export const DEMO_JWT_SECRET = 'hoichan-demo-secret-NOT-FOR-PRODUCTION';

/** A shared secret must be at least this many bytes (256 bits, the HS256 output size). */
export const MIN_SECRET_BYTES = 32;

const kid = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1-128 letters, digits, _ . : or -');

/**
 * One verification key. HS256: a shared secret (the hub and `hoichan token`
 * both hold it). RS256/EdDSA: a public key, PEM text or a file path; the hub
 * only verifies, and privateKey is needed only where tokens are minted.
 */
export const authKeySchema = z.discriminatedUnion('alg', [
  z.object({ kid, alg: z.literal('HS256'), secret: z.string().min(1), issuer: z.string().min(1).max(256).optional() }).strict(),
  z
    .object({
      kid,
      alg: z.enum(['RS256', 'EdDSA']),
      publicKey: z.string().min(1),
      privateKey: z.string().min(1).optional(),
      /** The identity provider's iss, when it is not auth.issuer. */
      issuer: z.string().min(1).max(256).optional(),
    })
    .strict(),
]);


function checkSecret(secret: string, demo: boolean, path: (string | number)[], ctx: z.RefinementCtx): void {
  if (secret === DEMO_JWT_SECRET) {
    if (!demo) ctx.addIssue({ code: 'custom', path, message: 'is the public demo secret: anyone can mint tokens with it; set a random one (openssl rand -base64 48)' });
    return;
  }
  if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
    ctx.addIssue({ code: 'custom', path, message: `must be at least ${MIN_SECRET_BYTES} bytes of random (openssl rand -base64 48)` });
  }
}

/** Cross-field checks of the auth section; paths are from the config root, as the config error names them. */
export function checkAuth(auth: AuthConfig, ctx: z.RefinementCtx): void {
  if (!auth.demo && !auth.jwtSecret && auth.keys.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'jwtSecret'],
      message: 'is required (set HOICHAN_JWT_SECRET) unless auth.keys is set; only demo mode may run without one',
    });
  }
  if (auth.jwtSecret) checkSecret(auth.jwtSecret, auth.demo, ['auth', 'jwtSecret'], ctx);
  const kids = new Set<string>(auth.jwtSecret ? ['default'] : []);
  auth.keys.forEach((key, i) => {
    if (kids.has(key.kid)) ctx.addIssue({ code: 'custom', path: ['auth', 'keys', i, 'kid'], message: `kid ${key.kid} is used twice${key.kid === 'default' ? " (auth.jwtSecret is kid 'default')" : ''}` });
    kids.add(key.kid);
    if (key.alg === 'HS256') checkSecret(key.secret, auth.demo, ['auth', 'keys', i, 'secret'], ctx);
  });
  if (auth.signingKid !== null && !kids.has(auth.signingKid)) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'signingKid'], message: `names no key (have: ${[...kids].join(', ') || 'none'})` });
  }
  if (auth.maxAgentTokenLifetime < auth.maxTokenLifetime) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'maxAgentTokenLifetime'], message: 'must be at least auth.maxTokenLifetime' });
  }
}

export const authConfigSchema = z
  .object({
    /** Shorthand for one HS256 key (kid 'default'): the hub verifies with it and `hoichan token` signs with it. */
    jwtSecret: z.string().min(1).nullable(),
    /** Verification keys by kid, so keys rotate without logging everyone out (docs/SECURITY.md). */
    keys: z.array(authKeySchema).max(32),
    /** Which key `hoichan token` signs with; default: the only key that can sign. */
    signingKid: z.string().min(1).max(128).nullable(),
    /** Tokens must carry this iss, unless their key names its own issuer (an identity provider's). */
    issuer: z.string().min(1).max(256),
    /** Longest lifetime (exp - iat, seconds) of a person's token; longer ones are refused. */
    maxTokenLifetime: z.number().int().min(60).max(7 * 24 * 3600),
    /** Longest lifetime of a site agent's token (seconds). */
    maxAgentTokenLifetime: z.number().int().min(60).max(400 * 24 * 3600),
    /** Tolerated clock difference with the issuer (seconds) for iat and nbf. */
    clockSkew: z.number().int().min(0).max(600),
    /** Revoked tokens, JSON lines; reloaded when it changes and on SIGHUP. Redis holds them too when redis.url is set. */
    revocationFile: z.string().min(1).nullable(),
    /**
     * Seconds a clustered hub may keep admitting tokens against its copy of the
     * Redis revocation list while Redis is unreachable (each admission audited);
     * past it, checks fail closed. 0: fail closed at once (docs/SECURITY.md).
     */
    revocationMaxStaleness: z.number().int().min(0).max(3600),
    /** Demo mode allows the built-in, publicly known secret. Never in a hospital. */
    demo: z.boolean(),
  })
  .strict();

export type AuthConfig = z.output<typeof authConfigSchema>;
