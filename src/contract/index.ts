// The public contract of the hub (docs/PROTOCOL.md, "Contract"): every
// signaling request with its reply, every peer event, the reading and device
// model, ingest and the ops report. Hub and web client import these types;
// nothing here imports the rest of src/ at run time, so the web bundle pulls
// in no hub code.

export type * from './conference.js';
export type * from './events.js';
export type * from './ingest.js';
export type * from './ops.js';
export type * from './readings.js';
export type * from './recording.js';
export type * from './signaling.js';
export { PEER_EVENT_NAMES, REQUEST_NAMES, type Assert, type Equivalent, type KeysOf, type SameShape } from './names.js';
