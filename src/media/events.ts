// The peer-facing types are part of the public contract (src/contract/);
// re-exported for the media layer's own imports.
export type { PeerEventMap, PeerEventName, PeerNotify, PeerSummary, ProducerInfo, ProducerSource, Role } from '../contract/index.js';
