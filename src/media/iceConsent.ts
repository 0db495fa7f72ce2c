// ICE consent freshness (RFC 7675), checked by the mediasoup worker since 3.13.20.

/** mediasoup's lower bound for iceConsentTimeout, in seconds (IceServer.cpp; it raises smaller values). */
const ICE_CONSENT_MIN_S = 10;
/** A silent peer's transport is closed within this: consent expiry plus the disconnected grace. */
const SILENT_PEER_BOUND_S = 30;

/**
 * The ICE consent timeout that, followed by iceDisconnectedTimeoutMs, closes
 * a silent peer's transport within 30 s (15 s + 15 s by default). The config
 * caps iceDisconnectedTimeoutMs at 20 s so consent keeps mediasoup's 10 s
 * minimum (browsers send a consent check every ~5 s).
 */
export function iceConsentTimeoutSeconds(iceDisconnectedTimeoutMs: number): number {
  return Math.max(ICE_CONSENT_MIN_S, Math.floor(SILENT_PEER_BOUND_S - iceDisconnectedTimeoutMs / 1000));
}
