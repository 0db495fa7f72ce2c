// What a Hoichan token says, per purpose. People (specialists, site staff,
// engineers) get a person token for one conference; a site agent gets an agent
// token bound to its site id and an explicit list of conferences (and,
// optionally, devices). Each endpoint takes only its own audience, so an agent
// credential copied off a commune PC opens no conference view, and a browser
// token cannot announce devices.

import type { Assert, Equivalent, Role } from '../contract/index.js';
import { z } from 'zod';

/** The three front doors of the hub; a token names those it is for in `aud`. */
export type Endpoint = 'signaling' | 'uplink' | 'api';

export const AUDIENCE: Readonly<Record<Endpoint, string>> = {
  signaling: 'hoichan-signaling',
  uplink: 'hoichan-uplink',
  api: 'hoichan-api',
};

/** Which audiences `hoichan token` puts in a token of each kind. */
export const PERSON_AUDIENCES = [AUDIENCE.signaling, AUDIENCE.api];
export const AGENT_AUDIENCES = [AUDIENCE.uplink];

export const PERSON_ROLES = ['specialist', 'site', 'engineer'] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];
/** A person token's roles are the contract's Role (src/contract/conference.ts), no more, no fewer. */
export type PersonRolesAreContractRoles = Assert<Equivalent<PersonRole, Role>>;

const conferenceId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a conference id (1-64 letters, digits, _ . or -)');
const deviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a device id');
const seconds = z.number().int().min(0).max(2 ** 40);

/** Registered claims every token must carry (RFC 7519 4.1); a token without exp, iat or jti is refused. */
const registered = {
  iss: z.string().min(1).max(256),
  aud: z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).min(1).max(8)]),
  sub: z.string().min(1).max(128),
  iat: seconds,
  exp: seconds,
  nbf: seconds.optional(),
  jti: z.string().min(8).max(128),
  /** Display name shown to the conference; the hub takes it from here, never from the client. */
  name: z.string().trim().min(1).max(128),
};

export const personClaimsSchema = z.object({
  ...registered,
  role: z.enum(PERSON_ROLES),
  /** One conference id; '*' (every conference) only for engineers, who never join media. */
  conf: z.union([conferenceId, z.literal('*')]),
  /** Extension: the site (health station, hospital) the person joins from, for the consultation records (docs/RECORDS.md). */
  site: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a site id (letters, digits, . _ -; at most 64)').optional(),
});

export const agentClaimsSchema = z.object({
  ...registered,
  role: z.literal('agent'),
  /** The conferences this site's devices may stream into: explicit, never '*'. */
  conferences: z.array(conferenceId).min(1).max(64),
  /** When present, only these devices may be announced. */
  devices: z.array(deviceId).min(1).max(512).optional(),
});

export const claimsSchema = z.discriminatedUnion('role', [personClaimsSchema, agentClaimsSchema]).superRefine((claims, ctx) => {
  if (claims.role !== 'agent' && claims.role !== 'engineer' && claims.conf === '*') {
    ctx.addIssue({ code: 'custom', path: ['conf'], message: `a ${claims.role} token must name one conference, not '*'` });
  }
});

/** A person's token (signaling and the HTTP API). Named Claims: most of the hub only sees these. */
export type Claims = z.infer<typeof personClaimsSchema>;
export type AgentClaims = z.infer<typeof agentClaimsSchema>;
export type AnyClaims = Claims | AgentClaims;
export type ClaimsFor<E extends Endpoint> = E extends 'uplink' ? AgentClaims : Claims;

export function audiences(claims: AnyClaims): string[] {
  return Array.isArray(claims.aud) ? claims.aud : [claims.aud];
}

export function canAccessConference(claims: Claims, conferenceId: string): boolean {
  return claims.conf === '*' ? claims.role === 'engineer' : claims.conf === conferenceId;
}

/** What an agent connection may announce, from its token. */
export interface UplinkGrant {
  readonly conferences: ReadonlySet<string>;
  /** Undefined: any device of this site (in a granted conference). */
  readonly devices?: ReadonlySet<string>;
}

export function uplinkGrantOf(claims: AgentClaims): UplinkGrant {
  return { conferences: new Set(claims.conferences), ...(claims.devices ? { devices: new Set(claims.devices) } : {}) };
}

/** Why the grant refuses this device in this conference, or undefined when it allows it. */
export function grantRefuses(grant: UplinkGrant, deviceId: string, conferenceId: string): string | undefined {
  if (grant.devices && !grant.devices.has(deviceId)) return `device ${deviceId} is not in this agent token's device list`;
  if (!grant.conferences.has(conferenceId)) return `device ${deviceId} is attached to conference ${conferenceId}, which this agent token does not grant`;
  return undefined;
}

/** Bearer token from an HTTP Authorization header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}
