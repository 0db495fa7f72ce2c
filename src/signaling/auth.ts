import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { Role } from '../media/events.js';

export const claimsSchema = z.object({
  sub: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  role: z.enum(['specialist', 'site', 'engineer']),
  /** A conference id, or '*' for every conference. */
  conf: z.string().min(1).max(64),
  exp: z.number().int(),
});

export type Claims = z.infer<typeof claimsSchema>;

export class AuthError extends Error {
  override name = 'AuthError';
}

/** Verifies an HS256 JWT and its claims; any failure is an AuthError without detail leakage. */
export function verifyToken(token: unknown, secret: string): Claims {
  if (typeof token !== 'string' || token.length === 0 || token.length > 4096) throw new AuthError('missing token');
  let decoded: unknown;
  try {
    decoded = jwt.verify(token, secret, { algorithms: ['HS256'] });
  } catch (err) {
    throw new AuthError((err as Error).name === 'TokenExpiredError' ? 'token expired' : 'invalid token');
  }
  const parsed = claimsSchema.safeParse(decoded);
  if (!parsed.success) throw new AuthError(`invalid claims: ${parsed.error.issues[0]?.path.join('.')}`);
  return parsed.data;
}

export interface TokenRequest {
  sub: string;
  name: string;
  role: Role;
  conf: string;
  ttlSeconds: number;
}

export function signToken(request: TokenRequest, secret: string): string {
  const { sub, name, role, conf, ttlSeconds } = request;
  return jwt.sign({ sub, name, role, conf }, secret, { algorithm: 'HS256', expiresIn: ttlSeconds });
}

export function canAccessConference(claims: Claims, conferenceId: string): boolean {
  return claims.conf === '*' || claims.conf === conferenceId;
}

/** Bearer token from an HTTP Authorization header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}
