// The public contract (docs/PROTOCOL.md, "Contract"), from the hub's own
// src/contract/: types only, so nothing of src/ ends up in the bundle.
export type * from '../../src/contract/index.js';
