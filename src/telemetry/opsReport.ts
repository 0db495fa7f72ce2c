// The ops report is part of the public contract: src/contract/ops.ts.
export type { DeviceStreamStats, OpsReport, OpsWorker } from '../contract/ops.js';
