// Authentication and authorization of tokens: a shared leaf below the
// signaling, uplink and HTTP domains, which each ask it about one endpoint.
export { AuthError, Authenticator, DEFAULT_AUTH_OPTIONS, type AuthenticatorOptions, type TokenRequest } from './Authenticator.js';
export {
  AGENT_AUDIENCES,
  AUDIENCE,
  PERSON_AUDIENCES,
  PERSON_ROLES,
  bearerToken,
  canAccessConference,
  claimsSchema,
  grantRefuses,
  uplinkGrantOf,
  type AgentClaims,
  type AnyClaims,
  type Claims,
  type ClaimsFor,
  type Endpoint,
  type PersonRole,
  type UplinkGrant,
} from './claims.js';
export { AuthEvents, type AuthEventMap, type AuthExpired, type AuthRefreshed, type AuthRefused, type AuthRevoked, type AuthSocket, type AuthSocketRevoked, type AuthStaleRevocationCheck } from './events.js';
export { DEFAULT_KID, KeyConfigError, KeyRing } from './keys.js';
export { ALGORITHMS, signJws, type Algorithm } from './jws.js';
export { AnyRevocations, FileRevocations, MemoryRevocations, RedisRevocations, appendRevocation, openRevocations, type Revocation, type RevocationCheck, type RevocationStore } from './revocation.js';
export { SocketTokens, TOKEN_EXPIRED_EVENT, TOKEN_REVOKED_EVENT, tokenHandshake, type HandshakeOptions } from './sockets.js';
