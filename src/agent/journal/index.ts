export { Journal } from './journal.js';
export type { JournalOptions, JournalDepth, DeviceDepth, JournalStats, JournalEvents } from './journal.js';
export type { FsyncPolicy } from './durability.js';
export type { DroppedRange } from './checkpoint.js';
export { JournalFullError, JournalClosedError } from './errors.js';
